"""The gateway's MCP spans (OpenTelemetry MCP conventions): a client's request, an upstream call.

Only reached while tracing is on (callers test `tracing.enabled` first): nothing here runs, and
no attribute is gathered, on an untraced call.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any
from urllib.parse import urlsplit

from libs.common import tracing
from services.gateway.call_context import CallContext
from services.gateway.jsonrpc import RpcFault
from services.gateway.routing_table import ServerEntry

NAMED = {"tools/call": "gen_ai.tool.name", "prompts/get": "gen_ai.prompt.name"}
SANDBOXED = frozenset({"stdio", "code"})  # reached through the sandbox, over NATS


async def request(
    method: str, params: dict[str, Any], ctx: CallContext, answer: Awaitable[Any]
) -> Any:
    """Await `answer` (the gateway's answer to a client's request) in its SERVER span."""
    with tracing.span(method, _target(method, params), tracing.SERVER) as span:
        span.set_attributes(_request_attributes(method, params, ctx))
        try:
            result = await answer
        except RpcFault as fault:
            _faulted(span, fault)
            raise
        _answered(span, result)
        return result


async def upstream(
    server: ServerEntry,
    method: str,
    params: dict[str, Any] | None,
    session: tuple[str | None, str | None],
    reply: Awaitable[dict[str, Any]],
) -> dict[str, Any]:
    """Await `reply` (an upstream's JSON-RPC reply) in a CLIENT span.

    `session` is the upstream session's (id, protocol version) when it has them. The span is
    current while the request is sent: HTTP upstreams get its `traceparent` in their headers,
    the sandbox in the NATS request's."""
    with tracing.span(method, _target(method, params), tracing.CLIENT) as span:
        span.set_attributes(_upstream_attributes(server, method, params, session))
        answer = await reply
        error = answer.get("error")
        if isinstance(error, dict):
            tracing.fail(span, str(error.get("code")), str(error.get("message") or "") or None)
            span.set_attribute(tracing.RPC_STATUS_CODE, str(error.get("code")))
        else:
            _answered(span, answer.get("result"))
        return answer


def _target(method: str, params: dict[str, Any] | None) -> str:
    """The low-cardinality part of a span's name: the tool or prompt name, else nothing."""
    if method in NAMED and params:
        name = params.get("name")
        return name if isinstance(name, str) else ""
    return ""


def _request_attributes(method: str, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """What the span of a client's request says about it."""
    attributes: dict[str, Any] = {"mcp.method.name": method, "mcp.protocol.version": ctx.protocol}
    _name(attributes, method, params)
    if ctx.session_id:
        attributes["mcp.session.id"] = ctx.session_id
    if ctx.rpc_id is not None:
        attributes["jsonrpc.request.id"] = str(ctx.rpc_id)
    if ctx.client:
        attributes["switchboard.client"] = ctx.client
    attributes["switchboard.endpoint"] = ctx.endpoint
    return attributes


def _upstream_attributes(
    server: ServerEntry,
    method: str,
    params: dict[str, Any] | None,
    session: tuple[str | None, str | None],
) -> dict[str, Any]:
    """What the span of an upstream call says about it."""
    attributes: dict[str, Any] = {"mcp.method.name": method, "switchboard.server": server.name}
    _name(attributes, method, params)
    session_id, protocol = session
    if session_id:
        attributes["mcp.session.id"] = session_id
    if protocol:
        attributes["mcp.protocol.version"] = protocol
    if server.transport in SANDBOXED:
        attributes["network.transport"] = "pipe"  # stdio, behind the sandbox
    elif server.url:
        parts = urlsplit(server.url)
        attributes["network.transport"] = "tcp"
        attributes["network.protocol.name"] = "http"
        if parts.hostname:
            attributes["server.address"] = parts.hostname
            attributes["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
    return attributes


def _name(attributes: dict[str, Any], method: str, params: dict[str, Any] | None) -> None:
    """The tool's or prompt's name, and `execute_tool` for a tool call."""
    target = _target(method, params)
    if target:
        attributes[NAMED[method]] = target
    if method == "tools/call":
        attributes["gen_ai.operation.name"] = "execute_tool"


def _faulted(span: Any, fault: RpcFault) -> None:
    """A JSON-RPC error: its code is the error type (MCP conventions)."""
    tracing.fail(span, str(fault.code), fault.message)
    span.set_attribute(tracing.RPC_STATUS_CODE, str(fault.code))


def _answered(span: Any, result: Any) -> None:
    """A tool result with `isError` is a failed call although JSON-RPC succeeded."""
    if isinstance(result, dict) and result.get("isError") is True:
        tracing.fail(span, "tool_error")
