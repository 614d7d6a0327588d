"""SSRF rules: which addresses an outbound connection may reach, and the static checks of a URL.

An address is refused when it is loopback, link-local (169.254.169.254, where cloud metadata
lives, and fe80::/10), private (RFC 1918, ULA fc00::/7), shared (CGNAT 100.64.0.0/10),
multicast, unspecified or reserved, unless a CIDR of the allowlist covers it. IPv6 forms that
carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`,
6to4 `2002::/16`, Teredo, IPv4-compatible `::a.b.c.d`) are judged by that IPv4 address.

Host names are normalised as browsers and resolvers read them (the WHATWG URL standard's IPv4
parser): `2852039166`, `0xa9fea9fe`, `0251.0376.0251.0376` and `169.254.43518` all name
169.254.169.254, so they are checked as that address, at registration and at connect time.
`libs/common/outbound.py` applies these rules to every address a name resolves to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d
CGNAT = ipaddress.ip_network("100.64.0.0/10")
_HEX = frozenset("0123456789abcdef")
_OCT = frozenset("01234567")


class SsrfRefused(ValueError):
    """The URL or what it resolves to is not allowed."""


def parse_networks(cidrs: Iterable[str]) -> list[IPNetwork]:
    """CIDR strings to networks; raises ValueError naming a bad one."""
    nets: list[IPNetwork] = []
    for cidr in cidrs:
        try:
            nets.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{cidr!r} is not a CIDR") from None
    return nets


def embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form stands for (mapped, NAT64, 6to4, Teredo), else None."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if any(addr in net for net in NAT64):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if addr in IPV4_COMPATIBLE and int(addr) > 1:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def address_problem(addr: IPAddress, allow: Iterable[IPNetwork]) -> str | None:
    """Why `addr` is refused, or None when it may be reached."""
    if isinstance(addr, ipaddress.IPv6Address):
        addr = embedded_ipv4(addr) or addr
    if any(addr in net for net in allow if net.version == addr.version):
        return None
    if addr.is_link_local:
        return "link-local address (cloud metadata lives here)"
    if addr.is_loopback:
        return "loopback address"
    if addr.is_unspecified:
        return "unspecified address"
    if addr.is_multicast:
        return "multicast address"
    if addr.is_reserved:
        return "reserved address"
    if isinstance(addr, ipaddress.IPv4Address) and addr in CGNAT:
        return "shared (CGNAT) address"
    if addr.is_private or not addr.is_global:
        return "private address"
    return None


def _ipv4_number(part: str) -> int | None:
    """One dotted part as the WHATWG IPv4 parser reads it (0x: hex, leading 0: octal)."""
    digits, allowed, radix = part, frozenset("0123456789"), 10
    if part[:2] in ("0x", "0X"):
        digits, allowed, radix = part[2:], _HEX, 16
    elif len(part) > 1 and part[0] == "0":
        digits, allowed, radix = part[1:], _OCT, 8
    if not digits:
        return 0
    if not set(digits.lower()) <= allowed:
        return None
    return int(digits, radix)


def _ends_in_number(parts: list[str]) -> bool:
    """The WHATWG test: a host whose last label is a number is an IPv4 address (or invalid)."""
    last = parts[-1]
    if last.isascii() and last.isdigit():
        return True
    return last[:2] in ("0x", "0X") and set(last[2:].lower()) <= _HEX


def numeric_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a numeric host names (decimal, hex, octal, short forms), else None.

    Raises SsrfRefused for a host that ends in a number but is no valid address (browsers and
    resolvers refuse or misread those alike)."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not parts or not parts[-1] or not _ends_in_number(parts):
        return None
    numbers = [_ipv4_number(p) if p else None for p in parts]
    if len(parts) > 4 or any(n is None for n in numbers):
        raise SsrfRefused("has a host that is not a valid IPv4 address")
    values = [n for n in numbers if n is not None]
    if any(n > 255 for n in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise SsrfRefused("has a host that is not a valid IPv4 address")
    value = values[-1] + sum(n << (8 * (3 - i)) for i, n in enumerate(values[:-1]))
    return ipaddress.IPv4Address(value)


def canonical_host(host: str) -> tuple[str, IPAddress | None]:
    """(the host as connections use it, its address when it is an address literal).

    Lower case without a trailing dot or brackets; numeric IPv4 forms become dotted quads."""
    name = host.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not name:
        raise SsrfRefused("has no host")
    if ":" in name:
        try:
            addr: IPAddress = ipaddress.IPv6Address(name)
        except ValueError:
            raise SsrfRefused("has a host that is not a valid IPv6 address") from None
        return str(addr), addr
    v4 = numeric_ipv4(name)
    if v4 is not None:
        return str(v4), v4
    return name, None


def parse_address(host: str) -> IPAddress | None:
    """The address a host text denotes (`[v6]`, v6, dotted or numeric v4).

    None for a name or for a text that is no valid address."""
    try:
        return canonical_host(host.split("%")[0] if ":" in host else host)[1]
    except SsrfRefused:
        return None


def check_host(host: str, allow: Iterable[IPNetwork]) -> tuple[str, IPAddress | None]:
    """Static checks of a host: its canonical form and address literal, or SsrfRefused."""
    name, addr = canonical_host(host)
    if addr is not None:
        problem = address_problem(addr, allow)
        if problem:
            raise SsrfRefused(f"points at a {problem}")
        return name, addr
    if name in METADATA_HOSTS:
        raise SsrfRefused("points at a cloud metadata service")
    if name == "localhost" or name.endswith(".localhost"):
        problem = address_problem(ipaddress.ip_address("127.0.0.1"), allow)
        if problem:
            raise SsrfRefused(f"resolves to a {problem}")
    return name, None


def check_url(url: str, allow: Iterable[IPNetwork]) -> str:
    """Static checks of an outbound URL; returns its canonical host or raises SsrfRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SsrfRefused("is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise SsrfRefused("must use http or https")
    if not parts.hostname:
        raise SsrfRefused("has no host")
    if parts.username or parts.password:
        raise SsrfRefused("must not carry credentials; use headers")
    if port == 0:
        raise SsrfRefused("has an invalid port")
    return check_host(parts.hostname, list(allow))[0]


def url_port(url: str) -> int:
    """The URL's port, or its scheme's default."""
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)
