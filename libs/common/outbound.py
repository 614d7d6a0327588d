"""The one way out: every outbound connection of every service resolves, checks and pins here.

A `Guard` resolves a host name once (the answer cached for `ttl_s`), checks every address it
got against the SSRF rules (`ssrf.py`; one refused address refuses the host) and hands only
those addresses to the connection, which never resolves the name again: an answer that changes
between the check and the connect (DNS rebinding) is never used unchecked. The Host header and
TLS SNI keep the name. The clients built here follow no redirect and ignore proxies from the
environment:

- `Guard.session()`: an aiohttp session whose resolver is the guard (address literals, which
  aiohttp never resolves, are checked by its middleware), and whose middleware refuses every
  redirect (`RedirectRefused`, an `aiohttp.ClientError`) before aiohttp could follow it;
- `Guard.http_client_factory()`: an httpx2 client factory for the official MCP client, whose
  network backend connects through the guard (optionally to one host only);
- `Guard.create_connection()`: an asyncio connection for clients of their own (the gateway's
  keep-alive upstream client).

The resolver can be injected (`resolve=`), which tests use to play a rebinding DNS server.

Over 300 lines on purpose: this is the single egress check of the platform (resolve, check,
pin), kept in one module so that it is reviewed and changed as one security boundary.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import aiohttp
import httpcore2
import httpx2
from aiohttp.abc import AbstractResolver
from aiohttp.client_middlewares import ClientHandlerType

from libs.common import ssrf
from libs.common.ssrf import IPNetwork, SsrfRefused

Resolve = Callable[[str, int], Awaitable[list[str]]]  # (host, port) -> addresses
ClientFactory = Callable[..., httpx2.AsyncClient]  # mcp's McpHttpClientFactory
DEFAULT_TTL_S = 30.0
REDIRECTS = frozenset({301, 302, 303, 307, 308})  # what aiohttp would follow
MAX_CACHED = 4096


class RedirectRefused(aiohttp.ClientResponseError):
    """An outbound request was answered with a redirect: it is never followed."""


class OutboundRefused(aiohttp.ClientConnectionError):
    """An aiohttp request to an address the SSRF rules refuse."""


class BodyTooLarge(aiohttp.ClientPayloadError):
    """An outbound answer larger than the caller takes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes")
        self.limit = limit


async def system_resolve(host: str, port: int) -> list[str]:
    """The operating system's answer for `host` (every address, in its order)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]).split("%")[0] for info in infos]


class Guard:
    """Resolves, checks and pins outbound connections under one allowlist of CIDRs."""

    def __init__(
        self,
        allow: Iterable[str | IPNetwork] = (),
        *,
        resolve: Resolve | None = None,
        ttl_s: float = DEFAULT_TTL_S,
    ) -> None:
        self._allow: tuple[IPNetwork, ...] = ()
        self.allow = allow  # type: ignore[assignment]  # the setter parses CIDR strings
        self._resolve = resolve or system_resolve
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}

    @property
    def allow(self) -> tuple[IPNetwork, ...]:
        """The CIDRs the rules let through."""
        return self._allow

    @allow.setter
    def allow(self, cidrs: Iterable[str | IPNetwork]) -> None:
        self._allow = tuple(
            c if not isinstance(c, str) else ssrf.parse_networks([c])[0] for c in cidrs
        )

    async def addresses(self, host: str, port: int) -> tuple[str, ...]:
        """The vetted addresses of `host`: resolved at most once per TTL, all checked now."""
        name, literal = ssrf.check_host(host, self._allow)
        if literal is not None:
            return (name,)
        addrs = await self._resolved(name, port)
        for text in addrs:
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                raise SsrfRefused(f"host {name!r} resolves to {text!r}") from None
            problem = ssrf.address_problem(addr, self._allow)
            if problem:
                raise SsrfRefused(f"host {name!r} resolves to a {problem}")
        return addrs

    async def _resolved(self, name: str, port: int) -> tuple[str, ...]:
        """One resolution of `name`, reused until its TTL passes."""
        now = time.monotonic()
        held = self._cache.get(name)
        if held is not None and held[0] > now:
            return held[1]
        try:
            found = await self._resolve(name, port)
        except OSError as exc:
            raise SsrfRefused(f"host {name!r} does not resolve ({exc.strerror or exc})") from None
        addrs = tuple(dict.fromkeys(found))
        if not addrs:
            raise SsrfRefused(f"host {name!r} has no address")
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        if self.ttl_s > 0:
            self._cache[name] = (now + self.ttl_s, addrs)
        return addrs

    async def check_url(self, url: str) -> tuple[str, tuple[str, ...]]:
        """Static checks, then resolution: the URL's canonical host and its vetted addresses."""
        host = ssrf.check_url(url, self._allow)
        return host, await self.addresses(host, ssrf.url_port(url))

    def forget(self) -> None:
        """Drop every cached resolution (the next connection resolves again)."""
        self._cache.clear()

    # ---- asyncio ------------------------------------------------------------------------

    async def create_connection(
        self,
        protocol_factory: Callable[[], asyncio.Protocol],
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
        """`loop.create_connection` to the first vetted address of `host` that answers.

        TLS verifies the name (SNI), not the address. Raises SsrfRefused or OSError."""
        loop = asyncio.get_running_loop()
        last: OSError | None = None
        for addr in await self.addresses(host, port):
            try:
                return await loop.create_connection(
                    protocol_factory,
                    addr,
                    port,
                    ssl=ssl_context,
                    server_hostname=host.strip("[]") if ssl_context is not None else None,
                )
            except OSError as exc:
                last = exc
        assert last is not None
        raise last

    # ---- aiohttp ------------------------------------------------------------------------

    def session(
        self, connector: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> aiohttp.ClientSession:
        """An aiohttp session through the guard: pinned addresses, no redirects, no proxies.

        `connector` holds TCPConnector options (limits, keep-alive)."""
        tcp = aiohttp.TCPConnector(
            resolver=GuardResolver(self), use_dns_cache=False, **dict(connector or {})
        )
        return aiohttp.ClientSession(
            connector=tcp, middlewares=(self._middleware,), trust_env=False, **kwargs
        )

    async def _middleware(
        self, request: aiohttp.ClientRequest, handler: ClientHandlerType
    ) -> aiohttp.ClientResponse:
        """Check address literals (aiohttp resolves no literal); refuse redirects."""
        host = request.url.raw_host or ""
        if ":" in host or host.replace(".", "").isascii() and host.replace(".", "").isdigit():
            try:
                await self.addresses(host, request.url.port or 0)
            except SsrfRefused as exc:
                raise OutboundRefused(f"refused by the SSRF rules: the address {exc}") from None
        response = await handler(request)
        if response.status in REDIRECTS:
            response.release()
            raise RedirectRefused(
                response.request_info,
                (),
                status=response.status,
                message="the answer is a redirect, which is never followed",
                headers=response.headers,
            )
        return response

    # ---- httpx2 (the official MCP client) ------------------------------------------------

    def http_client_factory(self, only_host: str | None = None) -> ClientFactory:
        """An `McpHttpClientFactory` whose clients connect through the guard.

        With `only_host`, to that host alone (an SSE `endpoint` or anything else elsewhere is
        refused)."""

        def make(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            return httpx2.AsyncClient(
                transport=GuardTransport(self, only_host),
                headers=headers,
                timeout=timeout or httpx2.Timeout(30.0, read=300.0),
                auth=auth,
                trust_env=False,
                follow_redirects=False,
            )

        return make


class GuardResolver(AbstractResolver):
    """aiohttp's resolver: the guard's vetted addresses, or an OSError naming the rule."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: int = socket.AF_INET
    ) -> list[dict[str, Any]]:
        """The vetted addresses of `host` as aiohttp wants them (numeric: never resolved)."""
        try:
            addrs = await self.guard.addresses(host, port)
        except SsrfRefused as exc:
            raise OSError(f"refused by the SSRF rules: {exc}") from None
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


class GuardBackend(httpcore2.AsyncNetworkBackend):
    """httpcore2's network backend: connects a host only to its vetted addresses."""

    def __init__(self, guard: Guard, only_host: str | None = None) -> None:
        self.guard = guard
        self.only = ssrf.canonical_host(only_host)[0] if only_host else None
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        """Try each vetted address of `host` in turn."""
        try:
            if self.only is not None and ssrf.canonical_host(host)[0] != self.only:
                raise SsrfRefused(f"host {host!r} is not the one this client may reach")
            addrs = await self.guard.addresses(host, port)
        except SsrfRefused as exc:
            raise httpcore2.ConnectError(f"refused by the SSRF rules: {exc}") from None
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
        """Unix sockets are never an outbound target."""
        raise httpcore2.ConnectError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        """Delegate (used by retries)."""
        await self._inner.sleep(seconds)


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS context of every guarded httpx2 client, made once per process.

    Loading the CA bundle costs about 35 ms of CPU: made per client, it was most of the
    registry's cost of a health check."""
    return httpx2.create_ssl_context(trust_env=False)


class GuardTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport with the guard's backend and no proxies from the environment."""

    def __init__(self, guard: Guard, only_host: str | None = None) -> None:
        super().__init__(verify=_tls(), trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=_tls(), network_backend=GuardBackend(guard, only_host)
        )


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """An aiohttp response's body, refused (`BodyTooLarge`) once it passes `limit` bytes."""
    length = response.headers.get("content-length", "")
    if length.isascii() and length.isdigit() and int(length) > limit:
        response.close()
        raise BodyTooLarge(limit)
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            response.close()
            raise BodyTooLarge(limit)
    return bytes(body)
