"""Which addresses sandboxed code may reach: the SSRF rules, minus the platform's own addresses.

The rules are the platform's (libs/common/ssrf.py): numeric host forms read, internal ranges
refused."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from libs.common import ssrf
from libs.common.ssrf import IPAddress, IPNetwork, parse_address

PLATFORM_TTL_S = 300.0


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
    """The destinations egress may reach: public addresses, minus the platform's own.

    Plus the CIDRs a platform admin allowlisted (SANDBOX_EGRESS_ALLOW_CIDRS)."""

    allow: Sequence[IPNetwork] = ()
    platform_hosts: tuple[str, ...] = ()
    platform: frozenset[IPAddress] = field(default_factory=frozenset)
    _until: float = 0.0

    def problem(self, addr: IPAddress) -> str | None:
        """Why `addr` may not be reached, or None."""
        effective = addr
        if isinstance(addr, ipaddress.IPv6Address):
            effective = ssrf.embedded_ipv4(addr) or addr
        if any(effective in net for net in self.allow if net.version == effective.version):
            return None
        if effective in self.platform or addr in self.platform:
            return "the platform's own address"
        return ssrf.address_problem(effective, ())

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
