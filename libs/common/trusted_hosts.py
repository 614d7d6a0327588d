"""Which Host and Origin a browser's request may name: DNS rebinding and cross-site WebSockets.

A page on an attacker's site whose name it re-points at the gateway's address makes the victim's
browser send requests with the attacker's name as Host (and as Origin), with the victim's cookies
and network position. So the Host must name the gateway: the host of `SWITCHBOARD_PUBLIC_URL`,
a loopback name, or one of `GATEWAY_ALLOWED_HOSTS`. An Origin, when a browser sends one, must be
a page of one of those hosts or one of `GATEWAY_ALLOWED_ORIGINS`. Clients that are not browsers
send no Origin and are judged by their Host alone. Ports are not compared: rebinding changes
the name, not the port.

The WebSockets of the other services (`/ws/terminal`, `/ws/events`, `/ws/health_status`) are
opened by pages with the user's cookie, so another site's page must not open them (cross-site
WebSocket hijacking): `refuse_websocket_origin` checks their Origin by the same rules, against
the public URL's host, the loopback names and the service's `<SERVICE>_ALLOWED_ORIGINS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.websockets import WebSocket

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
ORIGIN_CLOSE_CODE = 4403


def hostname(authority: str) -> str | None:
    """The lower-case host of `host[:port]` (IPv6 in brackets), None when it is malformed."""
    value = authority.strip().lower()
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        port = rest[1:]
        if not bracket or (rest and not (rest[0] == ":" and port.isascii() and port.isdigit())):
            return None
        return host or None
    host, colon, port = value.partition(":")
    if colon and not (port.isascii() and port.isdigit()):
        return None
    if not host or any(c in host for c in "/@?#\\ \t"):
        return None
    return host


def origin_hostname(origin: str) -> str | None:
    """The host of an Origin (`scheme://host[:port]`), None when it is not one."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or parts.path or parts.query or "@" in parts.netloc:
        return None
    return hostname(parts.netloc)


@dataclass(frozen=True)
class TrustedHosts:
    """The host names and origins an MCP request may name; built once from the settings."""

    names: frozenset[str]
    origins: frozenset[str]
    any_host: bool = False
    any_origin: bool = False

    @classmethod
    def of(
        cls, public_url: str, allowed_hosts: tuple[str, ...], allowed_origins: tuple[str, ...]
    ) -> TrustedHosts:
        """The public URL's host, the loopback names and the configured hosts and origins."""
        names = set(LOOPBACK)
        public = urlsplit(public_url).hostname
        if public:
            names.add(public.lower())
        names.update(n for h in allowed_hosts if h != "*" and (n := hostname(h)))
        origins = {o.strip().rstrip("/").lower() for o in allowed_origins if o != "*"}
        return cls(
            frozenset(names), frozenset(origins), "*" in allowed_hosts, "*" in allowed_origins
        )

    def host_refused(self, host: str | None) -> bool:
        """A Host header that names no host of the gateway (none at all is not a browser's)."""
        if host is None or self.any_host:
            return False
        return hostname(host) not in self.names

    def origin_refused(self, origin: str | None) -> bool:
        """An Origin that is neither a page of the gateway's hosts nor an allowed origin."""
        if origin is None or self.any_origin:
            return False
        if origin.strip().rstrip("/").lower() in self.origins:
            return False
        return origin_hostname(origin) not in self.names


async def refuse_websocket_origin(ws: WebSocket, public_url: str, allowed: tuple[str, ...]) -> bool:
    """Close a WebSocket handshake whose Origin is not allowed; True when it was refused.

    The client sees HTTP 403. Call it before `accept`."""
    trusted = TrustedHosts.of(public_url, (), allowed)
    if not trusted.origin_refused(ws.headers.get("origin")):
        return False
    await ws.close(code=ORIGIN_CLOSE_CODE, reason="origin not allowed")
    return True
