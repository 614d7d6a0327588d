"""/api/v1/tools and a server's tools: listing, disabled-tools, enable/disable, approve."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate
from libs.common.errors import NotFound
from libs.common.http import json_response, parse_body
from libs.common.pagination import list_query, page_body, paginate
from services.registry import permissions, servers, tools, views
from services.registry.context import Registry
from services.registry.schemas import DisabledTools, ToolPatch
from services.registry.store import tools as tools_store


def _reg(request: Request) -> Registry:
    """The registry's shared parts."""
    return request.state.registry


async def list_server_tools(request: Request) -> Response:
    """A server's tools with `disabled`, `quarantined`, `routable`, flags and diffs."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    query = list_query(request, sorts=tools_store.SORTS, default_sort="name", default_order="asc")
    async with _reg(request).pool.acquire() as conn:
        server = await servers.readable(conn, principal, ref)
        rows = await tools_store.list_for_servers(conn, [server["id"]])
    items = [
        views.tool_out(server, t)
        for t in rows
        if permissions.can(principal, "read", server, t["name"])
    ]
    if query.q:
        needle = query.q.lower()
        items = [
            t for t in items if needle in t["name"].lower() or needle in t["description"].lower()
        ]
    return json_response(paginate(items, query))


async def list_tools(request: Request) -> Response:
    """Every visible tool, searchable (`q`) and filterable by `server` and `state`."""
    principal = await authenticate(request)
    query = list_query(
        request,
        sorts=tools_store.SORTS,
        filters=("server", "state"),
        default_sort="name",
        default_order="asc",
    )
    visible = permissions.visibility(principal)
    async with _reg(request).pool.acquire() as conn:
        rows, total = await tools_store.search_tools(conn, query, visible)
    items = []
    for row in rows:
        server = {
            "name": row["server"],
            "enabled": row["server_enabled"],
            "disabled_tools": row["disabled_tools"],
        }
        items.append(views.tool_out(server, row))
    return json_response(page_body(items, total, query))


async def get_tool(request: Request) -> Response:
    """One tool of a server (with the diff when quarantined)."""
    principal = await authenticate(request)
    ref, name = request.path_params["name"], request.path_params["tool"]
    async with _reg(request).pool.acquire() as conn:
        server = await servers.readable(conn, principal, ref)
        if not permissions.can(principal, "read", server, name):
            raise NotFound(f"Tool {name!r} not found.", details={"server": ref, "tool": name})
        return json_response(views.tool_out(server, await tools.get_or_404(conn, server, name)))


def _disabled_out(server: Any) -> dict[str, Any]:
    """Our `tools` and the mcphubs seed's `disabled_tools`: the same list under both names."""
    names = list(server["disabled_tools"])
    return {"server": server["name"], "tools": names, "disabled_tools": names}


async def get_disabled_tools(request: Request) -> Response:
    """The server's disabled tool names."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    async with _reg(request).pool.acquire() as conn:
        server = await servers.readable(conn, principal, ref)
    return json_response(_disabled_out(server))


async def put_disabled_tools(request: Request) -> Response:
    """Replace the server's disabled tool names (`{"tools": [...]}`)."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    body = await parse_body(request, DisabledTools)
    reg = _reg(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        server = await servers.writable(conn, principal, ref)
        server = await tools.set_disabled(reg, conn, server, body.tools, principal.id)
    return json_response(_disabled_out(server))


async def _set_enabled(request: Request, enabled: bool) -> Response:
    """Enable or disable one tool."""
    principal = await authenticate(request)
    ref, name = request.path_params["name"], request.path_params["tool"]
    reg = _reg(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        server = await servers.writable(conn, principal, ref)
        await tools.get_or_404(conn, server, name)
        current = set(server["disabled_tools"])
        wanted = current - {name} if enabled else current | {name}
        server = await tools.set_disabled(reg, conn, server, sorted(wanted), principal.id)
        tool = await tools.get_or_404(conn, server, name)
    return json_response(views.tool_out(server, tool))


async def patch_tool(request: Request) -> Response:
    """Change a tool's `enabled` flag."""
    body = await parse_body(request, ToolPatch)
    return await _set_enabled(request, body.enabled)


async def enable_tool(request: Request) -> Response:
    """Enable one tool."""
    return await _set_enabled(request, True)


async def disable_tool(request: Request) -> Response:
    """Disable one tool."""
    return await _set_enabled(request, False)


async def approve_tool(request: Request) -> Response:
    """Approve a tool's current (e.g. quarantined) definition; it becomes routable."""
    principal = await authenticate(request)
    ref, name = request.path_params["name"], request.path_params["tool"]
    reg = _reg(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        await servers.writable(conn, principal, ref)
        view = await tools.approve(reg, conn, ref, name, principal.id)
    return json_response(view)


T = "/api/v1/servers/{name}/tools/{tool}"
routes = [
    Route("/api/v1/tools", list_tools, methods=["GET"]),
    Route("/api/v1/servers/{name}/tools", list_server_tools, methods=["GET"]),
    Route("/api/v1/servers/{name}/disabled-tools", get_disabled_tools, methods=["GET"]),
    Route("/api/v1/servers/{name}/disabled-tools", put_disabled_tools, methods=["PUT"]),
    Route(T, get_tool, methods=["GET"]),
    Route(T, patch_tool, methods=["PATCH"]),
    Route(T + "/enable", enable_tool, methods=["POST"]),
    Route(T + "/disable", disable_tool, methods=["POST"]),
    Route(T + "/approve", approve_tool, methods=["POST"]),
]
