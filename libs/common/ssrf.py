"""SSRF rules for upstream URLs: internal addresses are refused unless allowlisted."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ClientFactory = Callable[..., Any]  # mcp McpHttpClientFactory

METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}


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


def address_problem(addr: IPAddress, allow: list[IPNetwork]) -> str | None:
    """Why `addr` is refused, or None when it may be reached."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if any(addr in net for net in allow if net.version == addr.version):
        return None
    if addr.is_link_local:
        return "link-local address (cloud metadata lives here)"
    if addr.is_loopback:
        return "loopback address"
    if addr.is_unspecified or addr.is_multicast or addr.is_reserved:
        return "unroutable address"
    if addr.is_private or not addr.is_global:
        return "private address"
    return None


def check_url(url: str, allow: list[IPNetwork]) -> str:
    """Static checks of an upstream URL; returns its host or raises SsrfRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SsrfRefused("is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise SsrfRefused("must use http or https")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise SsrfRefused("has no host")
    if parts.username or parts.password:
        raise SsrfRefused("must not carry credentials; use headers")
    if port == 0:
        raise SsrfRefused("has an invalid port")
    if host in METADATA_HOSTS:
        raise SsrfRefused("points at a cloud metadata service")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            problem = address_problem(ipaddress.ip_address("127.0.0.1"), allow)
            if problem:
                raise SsrfRefused(f"resolves to a {problem}") from None
        return host
    problem = address_problem(addr, allow)
    if problem:
        raise SsrfRefused(f"points at a {problem}")
    return host


async def resolve_checked(url: str, allow: list[IPNetwork]) -> tuple[str, tuple[str, ...]]:
    """Resolve the URL's host once; every address must be allowed. Returns (host, addresses).

    Connections must then go to these addresses only (pinning.py), so an answer that changes
    between this check and the connect (DNS rebinding) is never used.
    """
    host = check_url(url, allow)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise SsrfRefused(f"host {host!r} does not resolve ({exc.strerror or exc})") from None
    addrs: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%")[0]
        problem = address_problem(ipaddress.ip_address(text), allow)
        if problem:
            raise SsrfRefused(f"resolves to a {problem}")
        if text not in addrs:
            addrs.append(text)
    if not addrs:
        raise SsrfRefused(f"host {host!r} has no address")
    return host, tuple(addrs)


async def check_resolved(url: str, allow: list[IPNetwork]) -> None:
    """Connect-time check without pinning (kept for callers that only validate)."""
    await resolve_checked(url, allow)
