"""The MCP endpoints: /mcp, /mcp/{team}, /mcp/servers/{path} (Streamable HTTP, both generations)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog
from mcp.shared.inbound import (
    InboundLadderRejection,
    classify_inbound_request,
    find_duplicated_routing_header,
)
from mcp_types import LOG_LEVEL_META_KEY, PROTOCOL_VERSION_META_KEY
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from libs.common.authn import Principal, authenticate
from libs.common.errors import ApiError, Unavailable
from services.gateway import metrics, param_headers
from services.gateway.call_context import CallContext
from services.gateway.clients import subscriptions
from services.gateway.clients.sessions import broadcast_ended
from services.gateway.features.progressive import parse_mode
from services.gateway.jsonrpc import (
    FORBIDDEN,
    HEADER_MISMATCH,
    HTTP_STATUS,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MODERN_HTTP_STATUS,
    PARSE_ERROR,
    SESSION_NOT_FOUND,
    UNAUTHENTICATED,
    UNAVAILABLE,
    RpcFault,
    error,
    response,
)
from services.gateway.protocol import REMOVED_METHODS, negotiate
from services.gateway.rate_limit import rate_limit, with_rate_headers

SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
KEEPALIVE_S = 15.0
LONG_WAITS = frozenset({"tasks/result"})  # 2025-11-25: streamed (keep-alive) when SSE is accepted
# answered by the gateway itself: no upstream notification can precede their result
ANSWERED_HERE = frozenset({"tools/list", "server/discover", "ping", "tasks/list"})
log = structlog.get_logger()


def _json(message: dict[str, Any], status: int = 200, headers: dict | None = None) -> Response:
    """A JSON-RPC message as an HTTP response."""
    return Response(orjson.dumps(message), status, headers=headers, media_type="application/json")


def _fault(request_id: Any, fault: RpcFault, modern: bool, headers: dict | None = None) -> Response:
    """A JSON-RPC error with the HTTP status its code maps to."""
    table = MODERN_HTTP_STATUS if modern else HTTP_STATUS
    msg = error(request_id, fault.code, fault.message, fault.data)
    return _json(msg, fault.status or table.get(fault.code, 200), headers)


def _check_origin(request: Request) -> None:
    """Refuse a Host or Origin that does not name the gateway (DNS rebinding): 403."""
    trusted = request.state.trusted_hosts
    host, origin = request.headers.get("host"), request.headers.get("origin")
    if trusted.host_refused(host):
        raise RpcFault(FORBIDDEN, "This Host is not allowed.", {"host": str(host)[:200]}, 403)
    if trusted.origin_refused(origin):
        raise RpcFault(FORBIDDEN, "This Origin is not allowed.", {"origin": str(origin)[:200]}, 403)


async def _principal(request: Request) -> Principal:
    """Authenticate, turning the API error into a JSON-RPC one."""
    try:
        principal = await authenticate(request)  # a dict lookup once verified (Verifier)
    except Unavailable as exc:  # auth could not be asked: the credential is not known bad
        raise RpcFault(UNAVAILABLE, exc.message, {"code": exc.code}) from None
    except ApiError as exc:
        raise RpcFault(UNAUTHENTICATED, exc.message, {"code": exc.code}) from None
    await rate_limit(request, principal)
    return principal


def _www_authenticate(request: Request) -> dict[str, str]:
    """The challenge pointing MCP clients at the protected-resource metadata."""
    base = str(request.base_url).rstrip("/")
    return {
        "WWW-Authenticate": f'Bearer realm="switchboard", resource_metadata="{base}'
        '/.well-known/oauth-protected-resource"'
    }


def _endpoint(request: Request, principal: Principal) -> CallContext:
    """The call context for the path: all tools, one team's, or one server's."""
    gateway = request.state.gateway
    params = request.path_params
    if "path" in params:
        server = gateway.table.by_path.get(params["path"]) or gateway.table.servers.get(
            params["path"]
        )
        # a server no grant lets the caller see (another org's) is not there for it
        if (
            server is None
            or not server.routable
            or not gateway.table.may_read_server(principal, server)
        ):
            raise RpcFault(SESSION_NOT_FOUND, f"No server at {params['path']!r}.")
        return CallContext(principal, endpoint="/mcp/servers/{path}", server=server)
    if "team" in params:
        team = params["team"]
        if not principal.is_platform_admin and team not in principal.teams:
            # another org's team (or one the caller is not in) is not there for it
            raise RpcFault(SESSION_NOT_FOUND, f"No team {team!r} of yours.", {"team": team[:100]})
        return CallContext(principal, endpoint="/mcp/{team}", team=team)
    return CallContext(principal)


async def post_mcp(request: Request) -> Response:
    """One JSON-RPC request or notification (Streamable HTTP POST)."""
    request_id: Any = None
    body: Any = None
    t0 = time.perf_counter()  # mcp.server.operation.duration
    modern = request.headers.get("mcp-protocol-version") in MODERN_PROTOCOL_VERSIONS
    try:
        _check_origin(request)
        # before anything else: a notification (cancellation), a client's reply or a parse error
        # tells nothing and does nothing for a caller without a valid credential
        principal = await _principal(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return _json(
                error(None, INVALID_REQUEST, "Content-Type must be application/json."), 415
            )
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return _json(error(None, PARSE_ERROR, "Parse error: the body is not JSON."), 400)
        if _is_reply(body) and request.headers.get("mcp-session-id"):
            return await _client_reply(request, principal, body)
        if (
            not isinstance(body, dict)
            or body.get("jsonrpc") != "2.0"
            or not isinstance(body.get("method"), str)
        ):
            return _json(error(None, INVALID_REQUEST, "Expected one JSON-RPC request object."), 400)
        request_id = body.get("id")
        params = body.get("params")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise RpcFault(INVALID_REQUEST, "params must be an object.")
        meta = params.get("_meta")
        modern = modern or (isinstance(meta, dict) and PROTOCOL_VERSION_META_KEY in meta)
        ctx = _endpoint(request, principal)
        if "id" not in body:
            return await _notification(request, principal, body["method"], params)
        ctx.modern, ctx.request_bytes = modern, len(raw)
        ctx.exposure = parse_mode(request.query_params.get("exposure"))
        reply = await _request(request, body, params, ctx, raw)
        metrics.operation(body["method"], "ok").observe(time.perf_counter() - t0)
        return reply
    except RpcFault as fault:
        if isinstance(body, dict) and isinstance(body.get("method"), str):
            metrics.operation(body["method"], "error").observe(time.perf_counter() - t0)
        headers = (
            _www_authenticate(request)
            if fault.status is None and fault.code == UNAUTHENTICATED
            else None
        )
        return _fault(request_id, fault, modern, headers)


async def _notification(
    request: Request, principal: Principal, method: str, params: dict[str, Any]
) -> Response:
    """Notifications of an authenticated caller are accepted; a cancellation names a call of
    the caller's own session (by request id), else the session is unknown (404)."""
    if method == "notifications/cancelled" and request.headers.get("mcp-session-id"):
        info = _session(request, principal)
        # the replica running the call may be another one: relay.cancel reaches every replica
        await request.state.relay.cancel(info.id, params.get("requestId"))
    return Response(status_code=202)


async def _request(
    request: Request, body: dict[str, Any], params: dict[str, Any], ctx: CallContext, raw: bytes
) -> Response:
    """Check the generation's envelope, then dispatch."""
    gateway = request.state.gateway
    method = body["method"]
    headers: dict[str, str] = {}
    if ctx.modern:
        dup = find_duplicated_routing_header(request.headers.items())
        # RFC 9110: a field value excludes the whitespace around it (httptools keeps a trailing one)
        fields = {name: value.strip() for name, value in request.headers.items()}
        verdict = classify_inbound_request(body, headers=fields)
        if dup is not None:
            raise RpcFault(HEADER_MISMATCH, f"The {dup} header appears more than once.")
        if isinstance(verdict, InboundLadderRejection):
            raise RpcFault(verdict.code, verdict.message, verdict.data)
        if method in REMOVED_METHODS:  # a 2026-07-28 request for what the handshake era had
            raise RpcFault(
                METHOD_NOT_FOUND, f"{method} is not a method of 2026-07-28.", {"method": method}
            )
        ctx.protocol = verdict.protocol_version
        ctx.client = _client_name(verdict.client_info)
        ctx.param_headers = param_headers.received(request.headers.items())
        caps = verdict.client_capabilities
        ctx.capabilities = caps if isinstance(caps, dict) else {}
        if method == "subscriptions/listen":
            return subscriptions.listen(request, body, params, headers, ctx)
    elif method == "initialize":
        protocol = negotiate(params.get("protocolVersion"))
        client = _client_name(params.get("clientInfo"))
        session_id = request.state.sessions.issue(ctx.principal, protocol, client)
        result = gateway.initialize_result(protocol)
        return _json(response(body["id"], result), headers={"Mcp-Session-Id": session_id})
    else:
        info = _session(request, ctx.principal)
        ctx.session_id, ctx.protocol, ctx.client = info.id, info.protocol, info.client
        ctx.session_expires_at = info.issued_at + request.state.sessions.ttl_s
        ctx.ask = _asker(request, info.id)
    accepts_sse = "text/event-stream" in request.headers.get("accept", "")
    meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
    if accepts_sse and ("progressToken" in meta or (method in LONG_WAITS and not ctx.modern)):
        return _Call(request, body, params, ctx).streamed(headers)
    # a stateless call hears from its upstream only what it asked for (progress, a log level);
    # a session's call may hear log messages at the session's level
    hears = ctx.session_id is not None or LOG_LEVEL_META_KEY in meta
    if accepts_sse and hears and method not in ANSWERED_HERE:
        return await _Call(request, body, params, ctx).answered(headers)
    if ctx.session_id is None:  # nothing can name a stateless call to cancel it: no task needed
        result = await gateway.handle(method, params, ctx)
        return _json(response(body["id"], result), headers=headers)
    task = asyncio.ensure_future(gateway.handle(method, params, ctx))
    key = (ctx.session_id, body["id"])
    request.state.inflight[key] = task
    try:
        result = await task
    except asyncio.CancelledError:
        raise RpcFault(-32800, "The request was cancelled.") from None
    finally:
        request.state.inflight.pop(key, None)
    return _json(response(body["id"], result), headers=headers)


def _is_reply(body: Any) -> bool:
    """A client's response to a server-to-client request."""
    return (
        isinstance(body, dict)
        and "method" not in body
        and "id" in body
        and ("result" in body or "error" in body)
    )


async def _client_reply(request: Request, principal: Principal, body: dict[str, Any]) -> Response:
    """Route a legacy client's answer to the replica that asked."""
    info = _session(request, principal)
    await request.state.relay.client_reply(info.id, body)
    return Response(status_code=202)


def _asker(request: Request, session_id: str) -> Any:
    """Sends a server-to-client request over the session's stream and awaits the answer."""
    relay, timeout_s = request.state.relay, request.state.settings.upstream_timeout_s

    async def ask(method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        return await relay.ask(session_id, method, params, timeout_s)

    return ask


def _session(request: Request, principal: Principal) -> Any:
    """The legacy session named by Mcp-Session-Id (400 when missing, 404 when unknown)."""
    session_id = request.headers.get("mcp-session-id")
    if not session_id:
        raise RpcFault(INVALID_REQUEST, "Missing Mcp-Session-Id: send initialize first.")
    info = request.state.sessions.open(session_id, principal)
    if info is None:
        raise RpcFault(SESSION_NOT_FOUND, "Unknown or ended session.", {"session": "not found"})
    return info


def _client_name(info: Any) -> str | None:
    """`name/version` from clientInfo."""
    if not isinstance(info, dict):
        return None
    return f"{info.get('name', '')}/{info.get('version', '')}"[:120]


class _Call:
    """One request run while its answer is sent: a JSON response, or an SSE stream that carries
    the notifications the upstream sends before its result (progress, log messages) and then the
    result, as on the upstream's own response stream."""

    def __init__(
        self, request: Request, body: dict[str, Any], params: dict[str, Any], ctx: CallContext
    ) -> None:
        self.rid, self.inflight = body["id"], request.state.inflight
        self.key = (ctx.session_id, body["id"])
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.streaming = False  # the answer is SSE: the call's messages go through the queue
        # resolved with True by the first notification, with False when the call ends first
        self.notified = asyncio.get_running_loop().create_future()
        ctx.notify = self._notify
        self.task = asyncio.ensure_future(request.state.gateway.handle(body["method"], params, ctx))
        self.task.add_done_callback(self._finished)
        if ctx.session_id is not None:  # a legacy session's call can be cancelled by its id
            self.inflight[self.key] = self.task

    def _forget(self) -> None:
        """Take the call out of the cancellable ones."""
        if self.inflight.get(self.key) is self.task:
            del self.inflight[self.key]

    async def _notify(self, msg: dict[str, Any]) -> None:
        """A message of the upstream for this call's client: the answer becomes SSE."""
        self.streaming = True
        self.queue.put_nowait(msg)
        if not self.notified.done():
            self.notified.set_result(True)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """The call ended: on a stream, its response message and the stream's end."""
        if self.streaming:
            self.queue.put_nowait(self._message(task))
            self.queue.put_nowait(None)
        elif not self.notified.done():
            self.notified.set_result(False)

    def _message(self, task: asyncio.Task[Any]) -> dict[str, Any]:
        """The JSON-RPC response of the ended call."""
        if task.cancelled():
            return error(self.rid, -32800, "The request was cancelled.")
        exc = task.exception()
        if isinstance(exc, RpcFault):
            return error(self.rid, exc.code, exc.message, exc.data)
        if exc is not None:
            log.error("mcp_call_failed", error=repr(exc))
            return error(self.rid, INTERNAL_ERROR, "Internal error.")
        return response(self.rid, task.result())

    async def answered(self, headers: dict) -> Response:
        """JSON when the call ends before any notification (the upstream's error as a fault,
        with its HTTP status); otherwise SSE from the first notification on."""
        try:
            streaming = await self.notified
        except asyncio.CancelledError:
            self.task.cancel()
            raise
        if streaming:
            return self.streamed(headers)
        self._forget()
        try:
            result = self.task.result()
        except asyncio.CancelledError:
            raise RpcFault(-32800, "The request was cancelled.") from None
        return _json(response(self.rid, result), headers=headers)

    def streamed(self, headers: dict) -> Response:
        """The call's messages as SSE (keep-alive comments while it runs)."""
        self.streaming = True
        return StreamingResponse(
            self._events(), media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
        )

    async def _events(self) -> AsyncIterator[bytes]:
        try:
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        msg = await self.queue.get()
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                if msg is None:
                    return
                yield b"event: message\ndata: " + orjson.dumps(msg) + b"\n\n"
        finally:
            self._forget()
            if not self.task.done():
                self.task.cancel()


async def get_mcp(request: Request) -> Response:
    """The legacy session's server-to-client stream (list-changed), resumable by Last-Event-ID."""
    try:
        _check_origin(request)
        if request.headers.get("mcp-protocol-version") in MODERN_PROTOCOL_VERSIONS:
            return Response(status_code=405, headers={"Allow": "POST"})
        principal = await _principal(request)
        info = _session(request, principal)
    except RpcFault as fault:
        headers = _www_authenticate(request) if fault.code == UNAUTHENTICATED else None
        return _fault(None, fault, False, headers)
    notifier = request.state.notifier
    last = request.headers.get("last-event-id", "")
    queue = notifier.subscribe()
    session_id, relay = info.id, request.state.relay
    await relay.open_stream(session_id, queue)  # server-to-client requests, from any replica
    if last.isascii() and last.isdigit() and int(last) < notifier.last_change_ns:
        queue.put_nowait({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})

    async def stream() -> AsyncIterator[bytes]:
        metrics.OPEN_SESSIONS.inc()
        try:
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        msg = await queue.get()
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                event_id = str(notifier.last_change_ns).encode()
                yield b"id: " + event_id + b"\nevent: message\ndata: " + orjson.dumps(msg) + b"\n\n"
        finally:
            notifier.unsubscribe(queue)
            await relay.close_stream(session_id, queue)
            metrics.OPEN_SESSIONS.dec()

    del info
    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


async def delete_mcp(request: Request) -> Response:
    """End a legacy session (on every replica)."""
    try:
        _check_origin(request)
        principal = await _principal(request)
        info = _session(request, principal)
    except RpcFault as fault:
        headers = _www_authenticate(request) if fault.code == UNAUTHENTICATED else None
        return _fault(None, fault, False, headers)
    request.state.sessions.end(info.id)
    with contextlib.suppress(Exception):
        await broadcast_ended(request.state.bus, info.id)
    return Response(status_code=204)


_METHODS = ["POST", "GET", "DELETE"]


class _McpEndpoint:
    """POST/GET/DELETE on one MCP path, served as a bare ASGI app: Starlette calls a class
    instance endpoint directly, without its request_response wrapper (an exception still reaches
    the app's ExceptionMiddleware, which renders it with the same handlers)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        response = await _dispatch(request)
        await response(scope, receive, send)


_ENDPOINT = _McpEndpoint()


def _endpoint_routes(path: str, name: str) -> list[Route]:
    """POST/GET/DELETE on one MCP path."""
    return [Route(path, _ENDPOINT, methods=_METHODS, name=name)]


async def _dispatch(request: Request) -> Response:
    """Route by HTTP method; every answer to a known identity carries its X-RateLimit-* headers."""
    if request.method == "POST":
        response = await post_mcp(request)
    elif request.method == "GET":
        response = await get_mcp(request)
    else:
        response = await delete_mcp(request)
    return with_rate_headers(request, response)


routes = [
    *_endpoint_routes("/mcp", "mcp"),
    *_endpoint_routes("/mcp/servers/{path:path}", "mcp_server"),
    *_endpoint_routes("/mcp/{team}", "mcp_team"),
]
