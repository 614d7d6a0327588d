"""Admin API served by the gateway: test a server, call one of its tools."""

from __future__ import annotations

import time
from typing import Any

import pydantic
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common import tenancy
from libs.common.authn import Principal, authenticate, require_grant
from libs.common.errors import Forbidden, NotFound, UpstreamError, UpstreamTimeout
from libs.common.http import json_response, parse_body
from services.gateway.call_context import CallContext
from services.gateway.context import context
from services.gateway.jsonrpc import UPSTREAM_TIMEOUT, RpcFault


class CallToolIn(pydantic.BaseModel):
    """Body of POST /api/v1/servers/{name}/call-tool."""

    model_config = pydantic.ConfigDict(extra="forbid")
    tool_name: str = pydantic.Field(min_length=1, max_length=256)
    arguments: dict[str, Any] = pydantic.Field(default_factory=dict)


def _server(request: Request, principal: Principal) -> Any:
    """The routing-table entry of the server in the path, or 404.

    404 also when no grant lets the caller see it: another org's server is not there for it."""
    name = request.path_params["name"]
    table = context(request).table
    server = table.servers.get(name) or next(
        (s for s in table.servers.values() if s.id == name), None
    )
    if server is None or not tenancy.may(principal, "read", server.ref):
        raise NotFound(f"Server {name!r} not found.", details={"server": name})
    return server


def _api_error(fault: RpcFault) -> Exception:
    """An upstream JSON-RPC failure as a REST error."""
    cls = UpstreamTimeout if fault.code == UPSTREAM_TIMEOUT else UpstreamError
    return cls(fault.message, details={"jsonrpc_code": fault.code})


async def test_server(request: Request) -> Response:
    """Connect to the server, list its tools and report the latency."""
    principal = await authenticate(request)
    server = _server(request, principal)
    if not tenancy.reads_whole(principal, server.ref):
        # the upstream's own listing shows every tool: not for a grant narrowed to some
        raise Forbidden(
            f"Testing {server.name!r} needs a grant on all of its tools.",
            details={"server": server.name, "permission": "read"},
        )
    t0 = time.perf_counter()
    try:
        reply, upstream_ms = await context(request).pool.request(server, "tools/list", {})
    except RpcFault as fault:
        return json_response(
            {
                "server": server.name,
                "ok": False,
                "error": {"code": fault.code, "message": fault.message},
                "latency_ms": round((time.perf_counter() - t0) * 1000, 2),
            }
        )
    tools = (reply.get("result") or {}).get("tools") or []
    return json_response(
        {
            "server": server.name,
            "ok": "error" not in reply,
            "tools": [t.get("name") for t in tools],
            "tool_count": len(tools),
            "latency_ms": round(upstream_ms, 2),
        }
    )


async def call_tool(request: Request) -> Response:
    """Call one tool through the gateway's call path (checked, metered and audited)."""
    principal = await authenticate(request)
    server = _server(request, principal)
    body = await parse_body(request, CallToolIn)
    gateway = context(request).gateway
    ctx = CallContext(principal, endpoint="admin call-tool", server=server)
    t0 = time.perf_counter()
    try:
        result = await gateway.call_tool({"name": body.tool_name, "arguments": body.arguments}, ctx)
    except RpcFault as fault:
        if fault.code == -32602 and "Unknown tool" in fault.message:
            raise NotFound(
                f"Tool {body.tool_name!r} not found on {server.name!r}.",
                details={"tool": body.tool_name},
            ) from None
        if fault.code == -32003:
            require_grant(principal, "execute", server.ref, body.tool_name)
        raise _api_error(fault) from None
    latency = round((time.perf_counter() - t0) * 1000, 2)
    return json_response(
        {"server": server.name, "tool": body.tool_name, "result": result, "latency_ms": latency}
    )


routes = [
    Route("/api/v1/servers/{name}/test", test_server, methods=["POST"]),
    Route("/api/v1/servers/{name}/call-tool", call_tool, methods=["POST"]),
]
