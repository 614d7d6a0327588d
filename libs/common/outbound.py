"""Pinned upstream connections: resolve once, check every address, connect only to those.

The MCP client's HTTP requests go through a transport whose network backend never resolves names
itself: it connects to the addresses vetted by `ssrf.resolve_checked` for the URL's host (the Host
header and TLS SNI still carry the name), and refuses any other host, so DNS rebinding between the
check and the connect, redirects and SSE endpoints on other hosts cannot reach a refused address.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import httpcore2
import httpx2
from aiohttp.abc import AbstractResolver

from services.registry import ssrf


class PinnedBackend(httpcore2.AsyncNetworkBackend):
    """Connects a host name only to its vetted addresses."""

    def __init__(self, pins: Mapping[str, tuple[str, ...]]) -> None:
        self._pins = {host.lower().rstrip("."): addrs for host, addrs in pins.items()}
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        """Try each pinned address of `host` in turn; unknown hosts are refused."""
        addrs = self._pins.get(host.lower().rstrip(".").strip("[]"))
        if not addrs:
            raise httpcore2.ConnectError(f"host {host!r} was not vetted by the SSRF rules")
        last: Exception | None = None
        for addr in addrs:
            try:
                return await self._inner.connect_tcp(
                    addr,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        """Unix sockets are never an upstream."""
        raise httpcore2.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        """Delegate (used by retries)."""
        await self._inner.sleep(seconds)


class PinnedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport with the pinned backend and no proxies from the environment."""

    def __init__(self, pins: Mapping[str, tuple[str, ...]]) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            network_backend=PinnedBackend(pins),
        )


def client_factory(pins: Mapping[str, tuple[str, ...]]) -> ssrf.ClientFactory:
    """An `McpHttpClientFactory` whose clients only reach the pinned addresses."""

    def make(
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            transport=PinnedTransport(pins),
            headers=headers,
            timeout=timeout or httpx2.Timeout(30.0, read=300.0),
            auth=auth,
            trust_env=False,
        )

    return make


async def pinned_factory(url: str, allow: list[ssrf.IPNetwork]) -> ssrf.ClientFactory:
    """Resolve and check `url`'s host once; a client factory connecting only there."""
    host, addrs = await ssrf.resolve_checked(url, allow)
    return client_factory({host: addrs})


class PinnedResolver(AbstractResolver):
    """An aiohttp resolver answering only with the vetted addresses of the pinned host."""

    def __init__(self, pins: Mapping[str, tuple[str, ...]]) -> None:
        self._pins = {host.lower().rstrip("."): addrs for host, addrs in pins.items()}

    async def resolve(
        self, host: str, port: int = 0, family: int = socket.AF_INET
    ) -> list[dict[str, Any]]:
        """The pinned addresses of `host`; any other host is refused."""
        addrs = self._pins.get(host.lower().rstrip(".").strip("[]"))
        if not addrs:
            raise OSError(f"host {host!r} was not vetted by the SSRF rules")
        return [
            {
                "hostname": host,
                "host": addr,
                "port": port,
                "family": socket.AF_INET6 if ":" in addr else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for addr in addrs
        ]

    async def close(self) -> None:
        """Nothing to release."""


async def pinned_session(
    url: str, allow: list[ssrf.IPNetwork], **kwargs: Any
) -> aiohttp.ClientSession:
    """An aiohttp session whose connections only reach `url`'s vetted addresses."""
    host, addrs = await ssrf.resolve_checked(url, allow)
    connector = aiohttp.TCPConnector(resolver=PinnedResolver({host: addrs}), use_dns_cache=False)
    return aiohttp.ClientSession(connector=connector, trust_env=False, **kwargs)
