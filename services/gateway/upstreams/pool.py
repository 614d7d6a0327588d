"""Upstream MCP servers: one pooled, initialised session each; limits, timeouts, breakers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import aiohttp
import orjson
import structlog

from libs.common import tracing
from libs.common.bus import Bus
from libs.common.outbound import Guard, Resolve
from libs.common.ssrf import parse_networks
from services.gateway import metrics, spans
from services.gateway.jsonrpc import (
    UPSTREAM_ERROR,
    UPSTREAM_TIMEOUT,
    UPSTREAM_UNAVAILABLE,
    RpcFault,
)
from services.gateway.routing_table import ServerEntry
from services.gateway.settings import GatewaySettings
from services.gateway.upstreams.breaker import CircuitBreaker
from services.gateway.upstreams.http_client import UpstreamHttp
from services.gateway.upstreams.legacy_sse import SseUpstream
from services.gateway.upstreams.sandbox import SandboxUpstream
from services.gateway.upstreams.streamable_http import HttpUpstream
from services.gateway.upstreams.transport import InputNeeded, Notify, TransportFailure

log = structlog.get_logger()

Upstream = HttpUpstream | SseUpstream | SandboxUpstream


class UpstreamPool:
    """One upstream connection per server, with its concurrency limit and circuit breaker.

    Every connection is opened through one outbound guard (resolved, checked, pinned)."""

    def __init__(
        self, settings: GatewaySettings, bus: Bus | None, resolve: Resolve | None = None
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.guard = Guard(settings.ssrf_allowlist, resolve=resolve, ttl_s=settings.dns_ttl_s)
        self.http: aiohttp.ClientSession | None = None
        self.posts = UpstreamHttp(
            self.guard, settings.connect_timeout_s, max_body_bytes=settings.event_limit
        )
        self._upstreams: dict[str, tuple[str, Upstream]] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}
        self.breakers: dict[str, CircuitBreaker] = {}

    def allow_also(self, cidrs: list[str] | None) -> None:
        """The allowlist: the gateway's own CIDRs and the registry's `ssrf_allowlist` setting."""
        try:
            extra = parse_networks(cidrs or [])
        except ValueError as exc:
            log.error("registry_ssrf_allowlist_unreadable", error=str(exc))
            extra = []
        self.guard.allow = [*parse_networks(self.settings.ssrf_allowlist), *extra]

    async def start(self) -> None:
        """Open the keep-alive pool."""
        connector = {"limit": 0, "limit_per_host": 256, "keepalive_timeout": 60}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout_s)
        self.http = self.guard.session(
            connector,
            timeout=timeout,
            json_serialize=lambda o: orjson.dumps(o).decode(),
            # every principal's calls share these connections: a cookie one upstream sets must
            # never ride along on another principal's call (and no jar to update per response)
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        """End every upstream session and close the pool."""
        for _, upstream in list(self._upstreams.values()):
            await upstream.close()
        self._upstreams.clear()
        await self.posts.close()
        if self.http is not None:
            await self.http.close()

    def upstream(self, server: ServerEntry) -> Upstream:
        """The pooled upstream of `server` (a new one when its connection details changed)."""
        held = self._upstreams.get(server.key)
        if held is not None and held[0] == server.fingerprint:
            held[1].server = server
            return held[1]
        if held is not None:
            asyncio.get_running_loop().create_task(held[1].close())
        if server.transport in ("stdio", "code"):
            if self.bus is None:
                raise RpcFault(UPSTREAM_UNAVAILABLE, "The sandbox is not reachable.")
            upstream: Upstream = SandboxUpstream(server, self.bus)
        elif server.transport == "sse":  # the deprecated HTTP+SSE transport
            assert self.http is not None
            upstream = SseUpstream(server, self.http, self.settings.event_limit)
        else:
            assert self.http is not None
            upstream = HttpUpstream(server, self.http, self.posts)
        self._upstreams[server.key] = (server.fingerprint, upstream)
        self._limits[server.key] = asyncio.Semaphore(
            server.max_concurrency or self.settings.max_concurrency
        )
        return upstream

    def forget(self, name: str) -> None:
        """Drop a deleted server's sessions (its own and its sources')."""
        prefix = f"{name}\0"
        for key in [k for k in self._upstreams if k == name or k.startswith(prefix)]:
            self._drop(key)

    def retain(self, keys: set[str]) -> None:
        """Drop every session whose pool key is not in `keys` (servers and sources gone)."""
        for key in [k for k in self._upstreams if k not in keys]:
            self._drop(key)

    def _drop(self, key: str) -> None:
        """Close one pooled connection and forget its limit and breaker."""
        held = self._upstreams.pop(key, None)
        self._limits.pop(key, None)
        self.breakers.pop(key, None)
        if held is not None:
            asyncio.get_running_loop().create_task(held[1].close())

    def breaker(self, name: str) -> CircuitBreaker:
        """The breaker of one pool key (a server's name, or one of its sources' keys)."""
        br = self.breakers.get(name)
        if br is None:
            br = self.breakers[name] = CircuitBreaker(
                self.settings.breaker_failures, self.settings.breaker_reset_s
            )
        return br

    def admitted(self, server: ServerEntry) -> CircuitBreaker:
        """The server's breaker, when it lets a request through; else the circuit-open fault.

        A new breaker shows as closed in the metrics, so every upstream called has the series."""
        new = server.key not in self.breakers
        breaker = self.breaker(server.key)
        if new:
            metrics.set_circuit(server.label, breaker.state)
        if not breaker.allow():
            raise RpcFault(
                UPSTREAM_UNAVAILABLE,
                f"The server {server.name!r} is unavailable (circuit open).",
                {"server": server.name, "retry_in_s": round(breaker.retry_in(), 1)},
            )
        return breaker

    async def request(
        self,
        server: ServerEntry,
        method: str,
        params: dict[str, Any] | None,
        *,
        on_notify: Notify | None = None,
        retry: bool = False,
        principal: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        tool: str = "",
    ) -> tuple[dict[str, Any], float]:
        """Forward one request; returns the upstream's JSON-RPC reply and the upstream ms.

        `headers` are a call's `Mcp-Param-*`, for Streamable HTTP upstreams; `tool` the routed
        tool's upstream name of a tools/call (its metric label: never a caller's text)."""
        upstream = self.upstream(server)
        breaker = self.admitted(server)
        timeout = server.timeout_s or self.settings.upstream_timeout_s
        relayed = False

        async def relay(msg: dict[str, Any]) -> None:
            nonlocal relayed
            relayed = True
            if on_notify is not None:
                await on_notify(msg)

        t0 = time.perf_counter()
        attempts = 2 if retry else 1
        for attempt in range(attempts):
            try:
                async with asyncio.timeout(timeout), self._limits[server.key]:
                    sending = _send(upstream, method, params, relay, principal, timeout, headers)
                    if tracing.enabled:  # in a CLIENT span, whose traceparent goes upstream
                        session = _session(upstream)
                        sending = spans.upstream(server, method, params, session, sending)
                    reply = await sending
            except InputNeeded as need:  # a session upstream asked a 2026-07-28 client
                result = await need.park(need)
                return {"jsonrpc": "2.0", "result": result}, (time.perf_counter() - t0) * 1000
            except TimeoutError:
                _observe(server, method, tool, upstream, t0, metrics.TIMEOUT)
                self._failed(server.label, breaker)
                if isinstance(upstream, HttpUpstream):
                    upstream.connected = False
                raise RpcFault(
                    UPSTREAM_TIMEOUT,
                    f"The server {server.name!r} did not answer in {timeout:g}s.",
                    {"server": server.name, "timeout_s": timeout},
                ) from None
            except TransportFailure as exc:
                self._failed(server.label, breaker)
                if isinstance(upstream, HttpUpstream):
                    upstream.connected = False
                if attempt + 1 < attempts and not relayed and breaker.allow():
                    continue
                _observe(server, method, tool, upstream, t0, "TransportFailure")
                log.warning("upstream_failed", server=server.name, error=str(exc))
                raise RpcFault(
                    UPSTREAM_ERROR,
                    f"The server {server.name!r} failed: {exc}",
                    {"server": server.name},
                ) from None
            except (RpcFault, asyncio.CancelledError) as exc:  # too large, or the caller gone
                _observe(server, method, tool, upstream, t0, metrics.exception_type(exc))
                raise
            self._succeeded(server.label, breaker)
            elapsed = time.perf_counter() - t0
            error = metrics.reply_error(method, reply)
            metrics.upstream_duration(
                server.name, method, tool, error, upstream.protocol, metrics.TCP
            ).observe(elapsed)
            return reply, elapsed * 1000
        raise AssertionError("unreachable")

    def _failed(self, name: str, breaker: CircuitBreaker) -> None:
        """Count a failure; note a state change in metrics and the log."""
        before = breaker.state
        after = breaker.failure()
        if after != before:
            log.warning("circuit_state_changed", server=name, state=after)
            metrics.set_circuit(name, after)

    def _succeeded(self, name: str, breaker: CircuitBreaker) -> None:
        """Count a success."""
        if breaker.state != "closed":
            breaker.success()
            log.info("circuit_state_changed", server=name, state="closed")
            metrics.set_circuit(name, "closed")
        else:
            breaker.failures = 0


def _observe(
    server: ServerEntry, method: str, tool: str, upstream: Upstream, t0: float, error: str
) -> None:
    """mcp.client.operation.duration of a request that failed.

    network.transport is `tcp` for every upstream: HTTP ones, and stdio servers too, which the
    gateway reaches over its NATS connection (the pipe is the sandbox's hop, not the gateway's)."""
    metrics.upstream_duration(
        server.name, method, tool, error, upstream.protocol, metrics.TCP
    ).observe(time.perf_counter() - t0)


def _send(
    upstream: Upstream,
    method: str,
    params: dict[str, Any] | None,
    relay: Notify,
    principal: dict[str, Any] | None,
    timeout: float,
    headers: dict[str, str] | None,
) -> Awaitable[dict[str, Any]]:
    """The upstream's request, as its transport takes it (not yet awaited)."""
    if isinstance(upstream, SandboxUpstream):
        return upstream.request(method, params, relay, principal=principal, timeout_s=timeout)
    if isinstance(upstream, HttpUpstream):
        return upstream.request(method, params, relay, headers)
    return upstream.request(method, params, relay)


def _session(upstream: Upstream) -> tuple[str | None, str | None]:
    """The upstream session's id and protocol version, where the transport has them."""
    if isinstance(upstream, HttpUpstream):
        return upstream.session_id, upstream.protocol
    return None, None
