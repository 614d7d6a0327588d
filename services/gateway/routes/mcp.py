"""The MCP endpoints: /mcp, /mcp/{team}, /mcp/servers/{path} (Streamable HTTP, both generations).

A little over 300 lines: the POST, GET and DELETE handlers and their dispatch; what they share
with the legacy transport lives in clients/ (admission, answers, streamed_call)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
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

from libs.common.authn import Principal
from services.gateway import metrics, param_headers
from services.gateway.call_context import CallContext
from services.gateway.clients import subscriptions
from services.gateway.clients.admission import (
    check_origin,
    client_name,
    endpoint_context,
    principal_of,
    session_of,
    www_authenticate,
)
from services.gateway.clients.answers import KEEPALIVE_S, SSE_HEADERS, fault_message, json_message
from services.gateway.clients.sessions import broadcast_ended
from services.gateway.clients.streamed_call import StreamedCall
from services.gateway.context import context
from services.gateway.features.progressive import parse_mode
from services.gateway.jsonrpc import (
    HEADER_MISMATCH,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    UNAUTHENTICATED,
    RpcFault,
    error,
    response,
)
from services.gateway.protocol import REMOVED_METHODS, negotiate
from services.gateway.rate_limit import with_rate_headers

LONG_WAITS = frozenset({"tasks/result"})  # 2025-11-25: streamed (keep-alive) when SSE is accepted
# answered by the gateway itself: no upstream notification can precede their result
ANSWERED_HERE = frozenset({"tools/list", "server/discover", "ping", "tasks/list"})


async def post_mcp(request: Request) -> Response:
    """One JSON-RPC request or notification (Streamable HTTP POST)."""
    request_id: Any = None
    body: Any = None
    t0 = time.perf_counter()  # mcp.server.operation.duration
    version = request.headers.get("mcp-protocol-version")
    modern = version in MODERN_PROTOCOL_VERSIONS
    ctx: CallContext | None = None
    try:
        check_origin(request)
        # before anything else: a notification (cancellation), a client's reply or a parse error
        # tells nothing and does nothing for a caller without a valid credential
        principal = await principal_of(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return json_message(
                error(None, INVALID_REQUEST, "Content-Type must be application/json."), 415
            )
        raw = await request.body()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return json_message(error(None, PARSE_ERROR, "Parse error: the body is not JSON."), 400)
        if _is_reply(body) and request.headers.get("mcp-session-id"):
            return await _client_reply(request, principal, body)
        if (
            not isinstance(body, dict)
            or body.get("jsonrpc") != "2.0"
            or not isinstance(body.get("method"), str)
        ):
            return json_message(
                error(None, INVALID_REQUEST, "Expected one JSON-RPC request object."), 400
            )
        request_id = body.get("id")
        params = body.get("params")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise RpcFault(INVALID_REQUEST, "params must be an object.")
        meta = params.get("_meta")
        modern = modern or (isinstance(meta, dict) and PROTOCOL_VERSION_META_KEY in meta)
        ctx = endpoint_context(request, principal)
        if "id" not in body:
            return await _notification(request, principal, body["method"], params)
        ctx.modern, ctx.request_bytes, ctx.rpc_id = modern, len(raw), request_id
        ctx.exposure = parse_mode(request.query_params.get("exposure"))
        reply = await _request(request, body, params, ctx, raw)
        _observe(body["method"], ctx, version, "", t0)
        return reply
    except RpcFault as fault:
        if isinstance(body, dict) and isinstance(body.get("method"), str):
            _observe(body["method"], ctx, version, metrics.error_type(fault.code), t0)
        headers = (
            www_authenticate(request)
            if fault.status is None and fault.code == UNAUTHENTICATED
            else None
        )
        return fault_message(request_id, fault, modern, headers)
    except Exception as exc:  # answered 500 by the app's handler: counted here first
        if isinstance(body, dict) and isinstance(body.get("method"), str):
            _observe(body["method"], ctx, version, metrics.exception_type(exc), t0)
        raise


def _observe(
    method: str, ctx: CallContext | None, version: str | None, error: str, t0: float
) -> None:
    """mcp.server.operation.duration of one request (labels bounded in `metrics.operation`).

    The protocol is the request's MCP-Protocol-Version header, else its session's or the one
    initialize negotiated."""
    if ctx is None:
        metrics.operation(method, "", error, version).observe(time.perf_counter() - t0)
        return
    if not version and (ctx.session_id or ctx.modern or method == "initialize"):
        version = ctx.protocol
    error = error or ctx.error_type
    metrics.operation(method, ctx.tool_label, error, version).observe(time.perf_counter() - t0)


async def _notification(
    request: Request, principal: Principal, method: str, params: dict[str, Any]
) -> Response:
    """Notifications of an authenticated caller are accepted.

    A cancellation names a call of the caller's own session (by request id), else the session
    is unknown (404)."""
    if method == "notifications/cancelled" and request.headers.get("mcp-session-id"):
        info = session_of(request, principal)
        # the replica running the call may be another one: relay.cancel reaches every replica
        await context(request).relay.cancel(info.id, params.get("requestId"))
    return Response(status_code=202)


async def _request(
    request: Request, body: dict[str, Any], params: dict[str, Any], ctx: CallContext, raw: bytes
) -> Response:
    """Check the generation's envelope, then dispatch."""
    gw = context(request)
    method = body["method"]
    headers: dict[str, str] = {}
    if ctx.modern:
        items = request.headers.items()  # decoded once for the three readers below
        dup = find_duplicated_routing_header(items)
        # RFC 9110: a field value excludes the whitespace around it (httptools keeps a trailing one)
        fields = {name: value.strip() for name, value in items}
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
        ctx.client = client_name(verdict.client_info)
        ctx.param_headers = param_headers.received(items)
        caps = verdict.client_capabilities
        ctx.capabilities = caps if isinstance(caps, dict) else {}
        if method == "subscriptions/listen":
            return subscriptions.listen(request, body, params, headers, ctx)
    elif method == "initialize":
        protocol = negotiate(params.get("protocolVersion"))
        client = client_name(params.get("clientInfo"))
        session_id = gw.sessions.issue(ctx.principal, protocol, client)
        ctx.protocol = protocol  # the negotiated version, for the operation's metric
        result = gw.gateway.initialize_result(protocol)
        return json_message(response(body["id"], result), headers={"Mcp-Session-Id": session_id})
    else:
        info = session_of(request, ctx.principal)
        ctx.session_id, ctx.protocol, ctx.client = info.id, info.protocol, info.client
        ctx.session_expires_at = info.issued_at + gw.sessions.ttl_s
        ctx.ask = _asker(request, info.id)
    accepts_sse = "text/event-stream" in request.headers.get("accept", "")
    meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
    if accepts_sse and ("progressToken" in meta or (method in LONG_WAITS and not ctx.modern)):
        return StreamedCall(gw.gateway, gw.inflight, body, params, ctx).streamed(headers)
    # a stateless call hears from its upstream only what it asked for (progress, a log level);
    # a session's call may hear log messages at the session's level
    hears = ctx.session_id is not None or LOG_LEVEL_META_KEY in meta
    if accepts_sse and hears and method not in ANSWERED_HERE:
        return await StreamedCall(gw.gateway, gw.inflight, body, params, ctx).answered(headers)
    if ctx.session_id is None:  # nothing can name a stateless call to cancel it: no task needed
        result = await gw.gateway.handle(method, params, ctx)
        return json_message(response(body["id"], result), headers=headers)
    task = asyncio.ensure_future(gw.gateway.handle(method, params, ctx))
    key = (ctx.session_id, body["id"])
    gw.inflight[key] = task
    try:
        result = await task
    except asyncio.CancelledError:
        raise RpcFault(-32800, "The request was cancelled.") from None
    finally:
        gw.inflight.pop(key, None)
    return json_message(response(body["id"], result), headers=headers)


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
    info = session_of(request, principal)
    await context(request).relay.client_reply(info.id, body)
    return Response(status_code=202)


def _asker(request: Request, session_id: str) -> Any:
    """Sends a server-to-client request over the session's stream and awaits the answer."""
    gw = context(request)
    relay, timeout_s = gw.relay, gw.settings.upstream_timeout_s

    async def ask(method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        return await relay.ask(session_id, method, params, timeout_s)

    return ask


async def get_mcp(request: Request) -> Response:
    """The legacy session's server-to-client stream (list-changed), resumable by Last-Event-ID."""
    try:
        check_origin(request)
        if request.headers.get("mcp-protocol-version") in MODERN_PROTOCOL_VERSIONS:
            return Response(status_code=405, headers={"Allow": "POST"})
        principal = await principal_of(request)
        info = session_of(request, principal)
    except RpcFault as fault:
        headers = www_authenticate(request) if fault.code == UNAUTHENTICATED else None
        return fault_message(None, fault, False, headers)
    notifier = context(request).notifier
    last = request.headers.get("last-event-id", "")
    queue = notifier.subscribe()
    session_id, relay = info.id, context(request).relay
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
        check_origin(request)
        principal = await principal_of(request)
        info = session_of(request, principal)
    except RpcFault as fault:
        headers = www_authenticate(request) if fault.code == UNAUTHENTICATED else None
        return fault_message(None, fault, False, headers)
    context(request).sessions.end(info.id)
    metrics.session_ended(time.time() - info.issued_at, info.protocol)
    with contextlib.suppress(Exception):
        await broadcast_ended(context(request).bus, info.id)
    return Response(status_code=204)


_METHODS = ["POST", "GET", "DELETE"]


class _McpEndpoint:
    """POST/GET/DELETE on one MCP path, served as a bare ASGI app.

    Starlette calls a class instance endpoint directly, without its request_response wrapper
    (an exception still reaches the app's ExceptionMiddleware, which renders it with the same
    handlers)."""

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
