"""The deprecated HTTP+SSE transport (2024-11-05): `GET /sse` + `POST /messages?session_id=`.

`GET /sse` authenticates like `/mcp`, issues a signed session id (the same codec as Streamable
HTTP sessions, so any replica can check it) and opens the stream; its first event is `endpoint`
with the POST URL. `POST /messages` checks the credential and the session (it must belong to the
same principal), answers 202 and sends the JSON-RPC response over the session's stream, on
whichever replica holds it (see `services.gateway.clients.relay`).

Three views, as on Streamable HTTP: `GET /sse` + `POST /messages` is `/mcp`'s (every permitted
tool, named `{server}__{tool}`); `GET /mcp/{team}/sse` + `POST /mcp/{team}/messages` is the
team's; `GET /mcp/servers/{path}/sse` + `POST /mcp/servers/{path}/messages` is one server's
(names unprefixed, resources and prompts forwarded). The view is the POST's path, checked on
every message like the credential; `?exposure=` on the GET is carried into the endpoint URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from services.gateway import metrics
from services.gateway.call_context import CallContext
from services.gateway.clients.admission import (
    check_origin,
    endpoint_context,
    principal_of,
    www_authenticate,
)
from services.gateway.clients.answers import KEEPALIVE_S, SSE_HEADERS, fault_message, json_message
from services.gateway.context import context
from services.gateway.features.progressive import parse_mode
from services.gateway.jsonrpc import (
    FORBIDDEN,
    INVALID_PARAMS,
    INVALID_REQUEST,
    PARSE_ERROR,
    SESSION_NOT_FOUND,
    UNAUTHENTICATED,
    RpcFault,
    error,
    response,
)
from services.gateway.protocol import negotiate

SSE_PROTOCOL = "2024-11-05"


def _frame(event: str, data: bytes) -> bytes:
    """One SSE event."""
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


async def get_sse(request: Request) -> Response:
    """Open a session: the endpoint event, then every message for the client."""
    try:
        check_origin(request)
        principal = await principal_of(request)
        endpoint_context(
            request, principal
        )  # the team's member, the server routable: else no stream
        exposure = parse_mode(request.query_params.get("exposure"))
    except RpcFault as fault:
        if fault.code in (FORBIDDEN, INVALID_PARAMS):  # no stream opens: say so in the status
            status = 403 if fault.code == FORBIDDEN else 400
            return json_message(error(None, fault.code, fault.message, fault.data), status)
        headers = www_authenticate(request) if fault.code == UNAUTHENTICATED else None
        return fault_message(None, fault, False, headers)
    gw = context(request)
    session_id = gw.sessions.issue(principal, SSE_PROTOCOL, None)
    relay = gw.relay
    notifier = gw.notifier
    queue = await relay.open_stream(session_id)
    changes = notifier.subscribe()
    endpoint = _messages_url(request, session_id, exposure)

    async def stream() -> AsyncIterator[bytes]:
        metrics.OPEN_SESSIONS.inc()
        opened, ended = time.monotonic(), ""
        getters: dict[asyncio.Task[Any], str] = {}
        answered = False
        try:
            yield _frame("endpoint", endpoint.encode())
            getters = {
                asyncio.ensure_future(queue.get()): "msg",
                asyncio.ensure_future(changes.get()): "change",
            }
            while True:
                done, _ = await asyncio.wait(
                    getters, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    yield b": ping\n\n"
                    continue
                for task in done:
                    kind = getters.pop(task)
                    # list changes wait for the first answer (to initialize): the client has
                    # listed nothing before it, and would take a notification for that answer
                    answered = answered or kind == "msg"
                    if answered:
                        yield _frame("message", orjson.dumps(task.result()))
                    source = queue if kind == "msg" else changes
                    getters[asyncio.ensure_future(source.get())] = kind
        except Exception as exc:  # not the client going away (cancelled): the session failed
            ended = metrics.exception_type(exc)
            raise
        finally:
            for task in getters:
                task.cancel()
            notifier.unsubscribe(changes)
            await relay.close_stream(session_id, queue)
            metrics.OPEN_SESSIONS.dec()
            metrics.session_ended(time.monotonic() - opened, SSE_PROTOCOL, ended)
            with contextlib.suppress(Exception):  # no stream can reopen this session
                await gw.watch.drop_session_everywhere(session_id)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


def _messages_url(request: Request, session_id: str, exposure: str) -> str:
    """The POST URL of a stream: its view's `messages` beside its `sse`."""
    base = request.scope.get("root_path", "").rstrip("/")
    view = request.url.path[len(base) :].removesuffix("/").removesuffix("/sse")
    url = f"{base}{view}/messages?session_id={session_id}"
    return url + f"&exposure={exposure}" if exposure else url


async def post_message(request: Request) -> Response:
    """One client message for an SSE session: 202, the answer goes over the stream."""
    try:
        check_origin(request)
        principal = await principal_of(request)
        session_id = request.query_params.get("session_id") or ""
        if not session_id:
            raise RpcFault(INVALID_REQUEST, "session_id is required: open GET /sse first.")
        info = context(request).sessions.open(session_id, principal)
        if info is None:
            raise RpcFault(SESSION_NOT_FOUND, "Unknown or ended session.", {"session": "not found"})
        ctx = endpoint_context(request, principal)
        ctx.exposure = parse_mode(request.query_params.get("exposure"))
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
        if not isinstance(body, dict) or body.get("jsonrpc") != "2.0":
            return json_message(error(None, INVALID_REQUEST, "Expected one JSON-RPC message."), 400)
    except RpcFault as fault:
        headers = www_authenticate(request) if fault.code == UNAUTHENTICATED else None
        return fault_message(None, fault, False, headers)
    ctx.endpoint = "/sse" if ctx.endpoint == "/mcp" else f"{ctx.endpoint}/sse"
    ctx.session_id, ctx.client, ctx.request_bytes = session_id, info.client, len(raw)
    ctx.rpc_id = body.get("id")
    await _accept(request, body, ctx)
    return Response("Accepted", status_code=202)


async def _accept(request: Request, body: dict[str, Any], ctx: CallContext) -> None:
    """Route a notification now; run a request in the background, answering over the stream."""
    gw = context(request)
    relay = gw.relay
    method = body.get("method")
    params = body.get("params") if isinstance(body.get("params"), dict) else {}
    if "method" not in body:  # a response to a server-to-client request
        await relay.client_reply(ctx.session_id, body)
        return
    if "id" not in body:
        if method == "notifications/cancelled" and ctx.session_id:
            await relay.cancel(ctx.session_id, params.get("requestId"))
        return
    session_id = ctx.session_id
    assert session_id is not None

    async def notify(msg: dict[str, Any]) -> None:
        await relay.send(session_id, msg)

    async def ask(method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        return await relay.ask(session_id, method, params, gw.settings.upstream_timeout_s)

    ctx.notify, ctx.ask = notify, ask
    gateway = gw.gateway
    inflight = gw.inflight
    key = (session_id, body["id"])
    t0 = time.perf_counter()  # mcp.server.operation.duration, as on /mcp

    async def run() -> None:
        protocol, failure = SSE_PROTOCOL, ""
        try:
            if not isinstance(method, str):
                raise RpcFault(INVALID_REQUEST, "method must be a string.")
            if method == "initialize":
                protocol = negotiate(params.get("protocolVersion"))
                result = gateway.initialize_result(protocol)
            else:
                result = await gateway.handle(method, params, ctx)
            await relay.send(session_id, response(body["id"], result))
        except RpcFault as fault:
            failure = metrics.error_type(fault.code)
            await relay.send(session_id, error(body["id"], fault.code, fault.message, fault.data))
        except asyncio.CancelledError:
            failure = metrics.error_type(-32800)  # what the client is answered
            with contextlib.suppress(Exception):
                await relay.send(session_id, error(body["id"], -32800, "Request cancelled."))
        finally:
            inflight.pop(key, None)
            if isinstance(method, str):
                failure = failure or ctx.error_type
                metrics.operation(method, ctx.tool_label, failure, protocol).observe(
                    time.perf_counter() - t0
                )

    task = asyncio.ensure_future(run())
    inflight[key] = task


def _view_routes(prefix: str, name: str) -> list[Route]:
    """`{prefix}/sse` and `{prefix}/messages` of one view."""
    return [
        Route(f"{prefix}/sse", get_sse, methods=["GET"], name=f"{name}_sse"),
        Route(f"{prefix}/messages", post_message, methods=["POST"], name=f"{name}_messages"),
        Route(f"{prefix}/messages/", post_message, methods=["POST"], name=f"{name}_messages_"),
    ]


# before mcp.routes: `/mcp/servers/{path:path}` would take `/mcp/servers/{path}/sse` too
server_routes = _view_routes("/mcp/servers/{path}", "legacy_server")
routes = [*_view_routes("", "legacy"), *_view_routes("/mcp/{team}", "legacy_team")]
