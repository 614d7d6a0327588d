"""Upstream MCP servers: one pooled, initialised session each; limits, timeouts, breakers."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import structlog
from mcp.shared.inbound import encode_header_value
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    PROTOCOL_VERSION_META_KEY,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_MODERN_VERSION

from libs.common import rpc_types, sse
from libs.common.bus import Bus
from libs.common.errors import ApiError
from libs.common.outbound import Guard, Resolve, read_capped
from libs.common.rpc_types import SandboxCall
from libs.common.ssrf import parse_networks
from services.gateway import client_meta, metrics
from services.gateway.breaker import CircuitBreaker
from services.gateway.jsonrpc import (
    RESULT_TOO_LARGE,
    UPSTREAM_ERROR,
    UPSTREAM_TIMEOUT,
    UPSTREAM_UNAVAILABLE,
    RpcFault,
    well_formed,
)
from services.gateway.routing_table import ServerEntry
from services.gateway.settings import GatewaySettings
from services.gateway.upstream_http import HttpFailure, Response, TooLarge, UpstreamHttp

log = structlog.get_logger()

LATEST_LEGACY = HANDSHAKE_PROTOCOL_VERSIONS[-1]
CLIENT_INFO = {"name": "switchboard-gateway", "version": "0.1.0"}
ACCEPT = "application/json, text/event-stream"
RESUME_ATTEMPTS = 5  # resumed streams in a row that may end without an event
RESUME_MAX_WAIT_MS = 5000  # the most of an upstream's `retry` we wait before resuming
SMALL_BODY = 64 * 1024  # what an answer to a notification or to our response may hold
# Request ids of an upstream session start at a random point of this range, not at 1: an upstream
# may key what it keeps by request id across sessions (the Python SDK names each request's SSE
# stream by its id, in one event store for every session), so a replay for ids that other
# sessions also use (another replica's session, SDK clients counting from 0 or 1) would carry
# their events, answers included. Numbers stay below 2**53, exact in JavaScript.
FIRST_ID = (1 << 32, 1 << 52)
NAME_PARAM = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
NAME_PARAM.update(dict.fromkeys(("tasks/get", "tasks/update", "tasks/cancel"), "taskId"))
Notify = Callable[[dict[str, Any]], Awaitable[None]]


class TransportFailure(Exception):
    """The upstream could not be reached or answered with something that is not MCP."""


class SessionExpired(Exception):
    """The upstream no longer knows our session (404): initialise again."""


class InputNeeded(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a message hook: park the call (its SSE response stays open) for a retry.

    `park(need)` turns it into the `input_required` result for the client; `_post` fills in the
    open response (`resp`, `rid`, `upstream`) before it propagates.
    """

    def __init__(self, request: dict[str, Any], park: Callable[..., Awaitable[dict]]) -> None:
        super().__init__(request.get("method"))
        self.request, self.park = request, park
        self.upstream: HttpUpstream | None = None
        self.resp: Response | None = None
        self.rid: int = 0


class HttpUpstream:
    """A Streamable HTTP upstream: the newest revision it speaks, one session, reused.

    Requests go through the lean `posts` client; aiohttp (`http`) carries the rest: session
    streams, listen requests, notifications, answers and DELETE."""

    def __init__(
        self, server: ServerEntry, http: aiohttp.ClientSession, posts: UpstreamHttp
    ) -> None:
        self.server = server
        self.http = http
        self.posts = posts
        self.modern = False
        self.protocol: str | None = None
        self.session_id: str | None = None
        self.capabilities: dict[str, Any] = {}  # the upstream's, from discover or initialize
        self.connected = False
        self._counted = False  # this session is in the open upstream sessions gauge
        self._lock = asyncio.Lock()
        self._ids = itertools.count(FIRST_ID[0] + secrets.randbelow(FIRST_ID[1] - FIRST_ID[0]))

    def _headers(self, method: str | None, params: dict[str, Any] | None) -> dict[str, str]:
        """Transport headers: the server's own (secrets), protocol and routing headers."""
        headers = {**self.server.headers, "Accept": ACCEPT, "Content-Type": "application/json"}
        if self.protocol:
            headers["MCP-Protocol-Version"] = self.protocol
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.modern and method:
            headers["Mcp-Method"] = method
            key = NAME_PARAM.get(method)
            value = params.get(key) if key and params else None
            if isinstance(value, str):  # base64 (=?base64?...?=) unless plain printable ASCII
                headers["Mcp-Name"] = encode_header_value(value)
        return headers

    async def connect(self) -> None:
        """Discover (2026-07-28) or initialise (earlier revisions); once per session."""
        async with self._lock:
            if self.connected:
                return
            self._uncount()  # an expired session is being replaced
            self.session_id, self.protocol, self.modern = None, None, False
            meta = {
                PROTOCOL_VERSION_META_KEY: LATEST_MODERN_VERSION,
                CLIENT_INFO_META_KEY: CLIENT_INFO,
                CLIENT_CAPABILITIES_META_KEY: {},
            }
            self.protocol, self.modern = LATEST_MODERN_VERSION, True
            try:
                reply = await self._post("server/discover", {"_meta": meta}, None)
                versions = (reply.get("result") or {}).get("supportedVersions") or []
            except (TransportFailure, SessionExpired):
                versions = []
            if LATEST_MODERN_VERSION in versions:
                self.capabilities = (reply.get("result") or {}).get("capabilities") or {}
                self.connected = True
                return
            self.protocol, self.modern = None, False
            params = {
                "protocolVersion": LATEST_LEGACY,
                "capabilities": {},
                "clientInfo": CLIENT_INFO,
            }
            reply = await self._post("initialize", params, None, keep_session=True)
            if "error" in reply:
                raise TransportFailure(f"initialize failed: {reply['error'].get('message')}")
            result = reply.get("result") or {}
            self.protocol = result.get("protocolVersion") or LATEST_LEGACY
            self.capabilities = result.get("capabilities") or {}
            await self._notify("notifications/initialized")
            self.connected = True
            self._counted = True
            metrics.UPSTREAM_SESSIONS.labels(self.server.name).inc()

    def _uncount(self) -> None:
        """Take this upstream's session out of the open-sessions gauge (once)."""
        if self._counted:
            self._counted = False
            metrics.UPSTREAM_SESSIONS.labels(self.server.name).dec()

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None,
        on_notify: Notify | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request over the pooled session; re-initialise once when it expired.
        `headers` (a call's `Mcp-Param-*`) go to 2026-07-28 upstreams only."""
        for attempt in range(2):
            if not self.connected:
                await self.connect()
            if self.modern:
                params = _with_modern_meta(params, self.protocol or LATEST_MODERN_VERSION)
            else:
                params = client_meta.without_envelope(params)
            try:
                return await self._post(method, params, on_notify, extra=headers)
            except SessionExpired:
                self.connected = False
                if attempt:
                    raise TransportFailure("the upstream keeps rejecting the session") from None
        raise AssertionError("unreachable")

    async def resume(self, resp: Response, rid: int, on_notify: Notify) -> dict[str, Any]:
        """Read on a parked call's SSE response until its answer (it may park again)."""
        parked = False
        try:
            return await self._answer(resp, rid, on_notify)
        except InputNeeded as need:
            need.upstream, need.resp, need.rid, parked = self, resp, rid, True
            raise
        except TooLarge as exc:
            raise too_large(self.server.name, exc.limit) from None
        except HttpFailure as exc:
            raise TransportFailure(str(exc)) from None
        finally:
            if not parked:
                resp.release()

    async def abandon(self, resp: Response, rid: int) -> None:
        """Drop a parked call: close its response and tell the upstream it is cancelled."""
        resp.close()
        note = {"requestId": rid, "reason": "the client did not retry in time"}
        try:
            await self._notify("notifications/cancelled", note)
        except TransportFailure:
            pass

    async def respond(self, message: dict[str, Any]) -> None:
        """Send our answer to a server-to-client request over the session."""
        try:
            async with self.http.post(
                self.server.url, data=orjson.dumps(message), headers=self._headers(None, None)
            ) as resp:
                await read_capped(resp, SMALL_BODY)
        except aiohttp.ClientError as exc:
            log.info("upstream_answer_not_sent", server=self.server.name, error=str(exc))

    async def _notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification (202 expected)."""
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            body["params"] = params
        try:
            async with self.http.post(
                self.server.url, data=orjson.dumps(body), headers=self._headers(method, params)
            ) as resp:
                await read_capped(resp, SMALL_BODY)
        except aiohttp.ClientError as exc:
            raise TransportFailure(str(exc)) from None

    async def _post(
        self,
        method: str,
        params: dict[str, Any] | None,
        on_notify: Notify | None,
        keep_session: bool = False,
        extra: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST one request and read its response (JSON, or SSE relaying notifications)."""
        rid = next(self._ids)
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            body["params"] = params
        headers = self._headers(method, params)
        if extra and self.modern:
            headers.update(extra)
        try:
            resp = await self.posts.post(
                self.server.url or "", orjson.dumps(body), headers, self.posts.max_body_bytes
            )
            parked = False
            try:
                if resp.status == 404 and self.session_id:
                    raise SessionExpired()
                if keep_session and resp.headers.get("mcp-session-id"):
                    self.session_id = resp.headers["mcp-session-id"]
                ctype = resp.headers.get("content-type", "")
                if ctype.startswith("text/event-stream"):
                    try:
                        return await self._answer(resp, rid, on_notify)
                    except InputNeeded as need:  # the call waits for a client's retry
                        need.upstream, need.resp, need.rid, parked = self, resp, rid, True
                        raise
                raw = await resp.read()
                if not ctype.startswith("application/json"):
                    raise TransportFailure(f"HTTP {resp.status} with content type {ctype!r}")
                return _parse_reply(raw, rid)
            finally:
                if not parked:
                    resp.release()
        except TooLarge as exc:
            raise too_large(self.server.name, exc.limit) from None
        except HttpFailure as exc:
            raise TransportFailure(str(exc)) from None
        except asyncio.CancelledError:
            if self.session_id and not keep_session:  # a legacy session: say so, not just close
                note = {"requestId": rid, "reason": "cancelled by the gateway's client"}
                task = asyncio.get_running_loop().create_task(
                    self._notify("notifications/cancelled", note)
                )
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise

    async def _answer(self, resp: Response, rid: int, on_notify: Notify | None) -> dict[str, Any]:
        """Read an SSE response until the answer to `rid`, relaying notifications on the way.

        An upstream may end the stream before it answers once it has primed it with an event id
        (SEP-1699 polling, or a restart): the rest is then read from a GET carrying
        `Last-Event-ID`, after the `retry` delay the upstream asked for.
        """
        while (event := await resp.next_event()) is not None:
            if (reply := await _handle_event(event, rid, on_notify)) is not None:
                return reply
        primary = resp.sse
        if primary is None or primary.last_id is None:
            raise TransportFailure("the upstream closed the stream before answering")
        return await self._resume(primary, rid, on_notify)

    async def _resume(self, primary: sse.Parser, rid: int, on_notify: Notify | None) -> dict:
        """GET the stream again from its last event id until the answer comes."""
        headers = self._headers(None, None)
        headers["Accept"] = "text/event-stream"
        headers.pop("Content-Type", None)
        idle = 0  # streams in a row that brought no event
        while idle < RESUME_ATTEMPTS:
            await asyncio.sleep(min(primary.retry_ms or 0, RESUME_MAX_WAIT_MS) / 1000)
            parser = sse.Parser(primary.max_event_bytes)
            parser.last_id, parser.retry_ms = primary.last_id, primary.retry_ms
            headers["Last-Event-ID"] = primary.last_id or ""
            idle += 1
            try:
                async with self.http.get(self.server.url or "", headers=headers) as resp:
                    ctype = resp.headers.get("content-type", "")
                    if resp.status != 200 or not ctype.startswith("text/event-stream"):
                        raise TransportFailure(
                            f"resuming the stream from event {primary.last_id!r}: "
                            f"HTTP {resp.status} with {ctype!r}"
                        )
                    async for event in sse.events(resp.content.iter_any(), parser):
                        idle = 0
                        primary.last_id, primary.retry_ms = parser.last_id, parser.retry_ms
                        if (reply := await _handle_event(event, rid, on_notify)) is not None:
                            return reply
                    primary.last_id, primary.retry_ms = parser.last_id, parser.retry_ms
            except sse.EventTooLarge:
                raise too_large(self.server.name, primary.max_event_bytes or 0) from None
            except aiohttp.ClientError as exc:
                raise TransportFailure(f"resuming the stream: {exc}") from None
        raise TransportFailure("the upstream's resumed streams ended without an answer")

    async def close(self) -> None:
        """End the upstream session (DELETE) when it had one."""
        if self.session_id and self.server.url:
            try:
                async with self.http.delete(
                    self.server.url, headers=self._headers(None, None), timeout=_SHORT
                ) as resp:
                    await read_capped(resp, SMALL_BODY)
            except (aiohttp.ClientError, TimeoutError):
                pass
        self._uncount()
        self.connected = False


_SHORT = aiohttp.ClientTimeout(total=2)


def too_large(server: str, limit: int) -> RpcFault:
    """-32013: the upstream's answer passed the limit while it was being read."""
    return RpcFault(
        RESULT_TOO_LARGE,
        f"The server {server!r} answered with more than {limit} bytes; the answer was dropped.",
        {"server": server, "limit": limit},
    )


def _with_modern_meta(params: dict[str, Any] | None, version: str) -> dict[str, Any]:
    """Add the 2026-07-28 per-request envelope to `params._meta`."""
    params = dict(params or {})
    meta = dict(params.get("_meta") or {})
    meta.setdefault(PROTOCOL_VERSION_META_KEY, version)
    meta.setdefault(CLIENT_INFO_META_KEY, CLIENT_INFO)
    meta.setdefault(CLIENT_CAPABILITIES_META_KEY, {})
    params["_meta"] = meta
    return params


def _parse_reply(raw: bytes, rid: int) -> dict[str, Any]:
    """Parse a JSON reply; anything that is not the JSON-RPC response to `rid` is a failure."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise TransportFailure("the upstream answered with something that is not JSON") from None
    if not isinstance(msg, dict) or ("result" not in msg and "error" not in msg):
        raise TransportFailure("the upstream answered with something that is not JSON-RPC")
    return well_formed(msg)


async def _handle_event(
    event: sse.Event, rid: int, on_notify: Notify | None
) -> dict[str, Any] | None:
    """The answer to `rid` when the event carries it; notifications and requests go on."""
    if not event.data:  # a priming event: an id to resume from, no message
        return None
    try:
        msg = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        raise TransportFailure("the upstream sent an SSE event that is not JSON") from None
    if not isinstance(msg, dict):
        return None
    if msg.get("id") == rid and ("result" in msg or "error" in msg):
        return well_formed(msg)
    if "method" in msg and on_notify is not None:  # notifications and server requests
        await on_notify(msg)
    return None


class SandboxUpstream:
    """stdio servers and code tools, reached through the sandbox over NATS."""

    modern = False

    def __init__(self, server: ServerEntry, bus: Bus) -> None:
        self.server = server
        self.bus = bus
        self._ids = itertools.count(1)

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None,
        on_notify: Notify | None = None,
        principal: dict[str, Any] | None = None,
        timeout_s: float = 60.0,
    ) -> dict[str, Any]:
        """One JSON-RPC request as an rpc.sandbox.call."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": next(self._ids), "method": method}
        if params is not None:
            message["params"] = params
        request = SandboxCall(self.server.name, message, timeout_s, principal)
        try:
            answer = await self.bus.call(rpc_types.SANDBOX_CALL, request, timeout=timeout_s + 1)
        except ApiError as exc:
            if exc.status == 504:
                raise TimeoutError() from None
            raise TransportFailure(f"sandbox: {exc.code}: {exc.message}") from None
        reply = answer.message
        if reply is None or ("result" not in reply and "error" not in reply):
            raise TransportFailure("the sandbox answered without a JSON-RPC response")
        return well_formed(reply)

    async def close(self) -> None:
        """Nothing is held per server."""


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
        self._upstreams: dict[str, tuple[str, HttpUpstream | SandboxUpstream]] = {}
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

    def upstream(self, server: ServerEntry) -> HttpUpstream | SandboxUpstream:
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
            upstream: HttpUpstream | SandboxUpstream = SandboxUpstream(server, self.bus)
        elif server.transport == "sse":  # the deprecated HTTP+SSE transport
            from services.gateway.sse_upstream import SseUpstream  # it imports this module

            assert self.http is not None
            upstream = SseUpstream(server, self.http, self.settings.event_limit)  # type: ignore[assignment]
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
        """The server's breaker, when it lets a request through; else the circuit-open fault."""
        breaker = self.breaker(server.key)
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
    ) -> tuple[dict[str, Any], float]:
        """Forward one request (`headers`: a call's `Mcp-Param-*`, for Streamable HTTP
        upstreams); returns the upstream's JSON-RPC reply and the upstream ms."""
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
                    if isinstance(upstream, SandboxUpstream):
                        reply = await upstream.request(
                            method, params, relay, principal=principal, timeout_s=timeout
                        )
                    elif isinstance(upstream, HttpUpstream):
                        reply = await upstream.request(method, params, relay, headers)
                    else:
                        reply = await upstream.request(method, params, relay)
            except InputNeeded as need:  # a session upstream asked a 2026-07-28 client
                result = await need.park(need)
                return {"jsonrpc": "2.0", "result": result}, (time.perf_counter() - t0) * 1000
            except TimeoutError:
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
                log.warning("upstream_failed", server=server.name, error=str(exc))
                raise RpcFault(
                    UPSTREAM_ERROR,
                    f"The server {server.name!r} failed: {exc}",
                    {"server": server.name},
                ) from None
            self._succeeded(server.label, breaker)
            return reply, (time.perf_counter() - t0) * 1000
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
