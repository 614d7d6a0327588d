"""Which addresses sandboxed code may reach: numeric host forms read, internal ranges refused."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
PLATFORM_TTL_S = 300.0
# one part of an inet_aton number, ASCII only: 0x-led hex, 0-led octal, or decimal
NUMBER_RE = re.compile(r"^(?:0x([0-9a-f]*)|0([0-7]*)|([1-9][0-9]*))$")


def parse_numeric_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any form inet_aton reads (`2852039166`, `0x7f000001`, `0177.1`, `127.1`).

    Each of one to four dot-separated parts is decimal, `0x` hex or `0`-led octal; the last
    part fills the remaining bytes. None when `text` is not such a number.
    """
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for part in parts:
        match = NUMBER_RE.match(part.lower())
        if match is None:
            return None
        hexa, octal, decimal = match.groups()
        if hexa is not None:
            values.append(int(hexa or "0", 16))
        elif octal is not None:
            values.append(int(octal or "0", 8))
        else:
            values.append(int(decimal, 10))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for value in head:
        number = number * 256 + value
    number = (number << (8 * (4 - len(head)))) | last
    return ipaddress.IPv4Address(number)


def parse_address(host: str) -> IPAddress | None:
    """The IP address a host text denotes (`[v6]`, v6, dotted or numeric v4), else None."""
    text = host.strip().lower().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text.split("%")[0])
        except ValueError:
            return None
    return parse_numeric_ipv4(text)


def embedded_ipv4(addr: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, NAT64, 6to4, IPv4-compatible)."""
    if isinstance(addr, ipaddress.IPv4Address):
        return None
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if any(addr in net for net in NAT64):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr in SIX_TO_FOUR:
        return addr.sixtofour
    if addr in IPV4_COMPATIBLE and int(addr) > 1:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def range_problem(addr: IPAddress) -> str | None:
    """Why an address is not a public destination (None when it is one)."""
    if addr.is_unspecified:
        return "unspecified address"
    if addr.is_loopback:
        return "loopback address"
    if addr.is_link_local:
        return "link-local address (cloud metadata lives here)"
    if addr.is_multicast:
        return "multicast address"
    if isinstance(addr, ipaddress.IPv4Address) and addr in CGNAT:
        return "shared (CGNAT) address"
    if addr.is_private:
        return "private address"
    if addr.is_reserved or not addr.is_global:
        return "non-public address"
    return None


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR texts to networks; raises ValueError naming a bad one."""
    nets = []
    for cidr in cidrs:
        try:
            nets.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{cidr!r} is not a CIDR") from None
    return tuple(nets)


def url_hosts(urls: Iterable[str]) -> list[str]:
    """The host names in URLs (a comma-separated NATS server list counts as several)."""
    hosts = []
    for url in urls:
        for part in str(url).split(","):
            try:
                host = urlsplit(part.strip()).hostname
            except ValueError:
                continue
            if host:
                hosts.append(host)
    return hosts


@dataclass
class AddressGuard:
    """The destinations egress may reach: public addresses, minus the platform's own, plus the
    CIDRs a platform admin allowlisted (SANDBOX_EGRESS_ALLOW_CIDRS)."""

    allow: tuple[IPNetwork, ...] = ()
    platform_hosts: tuple[str, ...] = ()
    platform: frozenset[IPAddress] = field(default_factory=frozenset)
    _until: float = 0.0

    def problem(self, addr: IPAddress) -> str | None:
        """Why `addr` may not be reached, or None."""
        effective = embedded_ipv4(addr) or addr
        if any(effective in net for net in self.allow if net.version == effective.version):
            return None
        if effective in self.platform or addr in self.platform:
            return "the platform's own address"
        return range_problem(effective)

    def literal_problem(self, host: str) -> str | None:
        """Why an IP literal host may not be reached (None for names and allowed addresses)."""
        addr = parse_address(host)
        return None if addr is None else self.problem(addr)

    async def refresh(self) -> None:
        """Resolve the platform's endpoints again when the last answer is old."""
        if self._until > time.monotonic():
            return
        found: set[IPAddress] = set()
        loop = asyncio.get_running_loop()
        for host in self.platform_hosts:
            literal = parse_address(host)
            if literal is not None:
                found.add(literal)
                continue
            try:
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except OSError:
                continue
            found.update(ipaddress.ip_address(str(i[4][0]).split("%")[0]) for i in infos)
        # a name that stopped resolving keeps the addresses it had: never shrink by accident
        self.platform = frozenset(found) | self.platform
        self._until = time.monotonic() + PLATFORM_TTL_S
