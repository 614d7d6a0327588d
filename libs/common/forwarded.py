"""The caller's address behind nginx: X-Real-IP only when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.requests import HTTPConnection

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDR strings as networks (ValueError names the bad one)."""
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def client_address(conn: HTTPConnection, trusted: Iterable[IPNetwork]) -> str:
    """The caller's address: X-Real-IP when the peer is a trusted proxy, else the peer itself.

    nginx sets X-Real-IP to the address it was connected from, replacing what the client sent.
    X-Forwarded-For is never read: nginx appends to what the client sent."""
    peer = conn.client.host if conn.client else "unknown"
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return peer[:64]
    if any(address in net for net in trusted):
        try:
            return str(ipaddress.ip_address(conn.headers.get("x-real-ip", "").strip()))
        except ValueError:
            pass
    return str(address)
