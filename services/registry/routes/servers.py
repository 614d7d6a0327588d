"""/api/v1/servers: CRUD, toggle, refresh, details."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import Principal, authenticate
from libs.common.http import json_response, no_content, parse_body, read_json, validate
from libs.common.pagination import list_query, page_body
from services.registry import orgs, permissions, refresh, servers, views
from services.registry.context import Registry
from services.registry.schemas import ServerCreate, ServerUpdate, ToggleBody
from services.registry.store import servers as servers_store
from services.registry.store import tools as tools_store


def _reg(request: Request) -> Registry:
    """The registry's shared parts."""
    return request.state.registry


async def create_server(request: Request) -> Response:
    """Register a server, then discover its tools."""
    principal = await authenticate(request)
    body = await parse_body(request, ServerCreate)
    reg = _reg(request)
    org = await orgs.creation_org(reg, principal, body.org)
    async with reg.pool.acquire() as conn, conn.transaction():
        server = await servers.create(reg, conn, body, org, principal.id)
    if server["enabled"]:
        await refresh.refresh(reg, server["id"], principal.id)
    async with reg.pool.acquire() as conn:
        server = await servers_store.get_server_by_id(conn, server["id"])
        return json_response(await servers.public_view(conn, server, principal), 201)


async def list_servers(request: Request) -> Response:
    """List the servers the caller may read (filters: status, team, tag, transport, enabled, q)."""
    principal = await authenticate(request)
    query = list_query(
        request,
        sorts=servers_store.SORTS,
        filters=servers_store.FILTERS,
        default_sort="name",
        default_order="asc",
    )
    reg = _reg(request)
    if "org" in query.filters:
        query.filters["org"] = await orgs.org_id(reg, principal, query.filters["org"])
    async with reg.pool.acquire() as conn:
        rows, total = await servers_store.list_servers(
            conn, query, permissions.visibility(principal)
        )
        items = await servers.public_views(conn, rows, principal)
    return json_response(page_body(items, total, query))


async def get_server(request: Request) -> Response:
    """One server by name, path or id."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    async with _reg(request).pool.acquire() as conn:
        server = await servers.readable(conn, principal, ref)
        return json_response(await servers.public_view(conn, server, principal))


async def server_details(request: Request) -> Response:
    """A server with its tools, resources and prompts (MCP Gateway Registry details).

    A grant narrowed to tools shows those tools only, and no resources or prompts."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    async with _reg(request).pool.acquire() as conn:
        server = await servers.readable(conn, principal, ref)
        view = await servers.public_view(conn, server, principal)
        tool_rows = await tools_store.list_for_servers(conn, [server["id"]])
    view["tools"] = [
        views.tool_out(server, t)
        for t in tool_rows
        if permissions.can(principal, "read", server, t["name"])
    ]
    whole = permissions.reads_whole(principal, server)
    view["resources"] = server["resources"] if whole else []
    view["prompts"] = server["prompts"] if whole else []
    return json_response(view)


async def update_server(request: Request) -> Response:
    """Change a server (PATCH: given fields; PUT: the same, headers/env replaced as given)."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    body = await parse_body(request, ServerUpdate)
    reg = _reg(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        server = await servers.writable(conn, principal, ref)
        if "trusted" in body.model_fields_set:
            permissions.require_trust(principal, server)
        keep = permissions.holds_secrets(principal, server)
        server, due = await servers.update(reg, conn, server, body, principal.id, keep_secrets=keep)
    if due and server["enabled"]:
        await refresh.refresh(reg, server["id"], principal.id)
    return await _current_view(reg, server["id"], principal)


async def _current_view(reg: Registry, server_id: uuid.UUID, principal: Principal) -> Response:
    """The server as stored now (after a refresh), in its public form."""
    async with reg.pool.acquire() as conn:
        server = await servers_store.get_server_by_id(conn, server_id)
        return json_response(await servers.public_view(conn, server, principal))


async def delete_server(request: Request) -> Response:
    """Delete a server with its tools and secrets."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    reg = _reg(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        server = await servers.writable(conn, principal, ref)
        await servers.delete(reg, conn, server, principal.id)
    return no_content()


async def toggle_server(request: Request) -> Response:
    """Enable or disable a server (`{"enabled": bool}`; no body flips it)."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    raw = await read_json(request) if await request.body() else {}
    body = validate(ToggleBody, raw)
    reg = _reg(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        server = await servers.writable(conn, principal, ref)
        enabled = (not server["enabled"]) if body.enabled is None else body.enabled
        server = await servers.toggle(reg, conn, server, enabled, principal.id)
    if enabled:
        await refresh.refresh(reg, server["id"], principal.id)
    return await _current_view(reg, server["id"], principal)


async def refresh_server(request: Request) -> Response:
    """Health check and tool discovery now; answers the outcome and the tool changes."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    reg = _reg(request)
    async with reg.pool.acquire() as conn:
        server = await servers.writable(conn, principal, ref)
    outcome = await refresh.refresh(reg, server["id"], principal.id)
    return json_response({"server": server["name"], **outcome})


routes = [
    Route("/api/v1/servers", create_server, methods=["POST"]),
    Route("/api/v1/servers", list_servers, methods=["GET"]),
    Route("/api/v1/servers/{name}", get_server, methods=["GET"]),
    Route("/api/v1/servers/{name}", update_server, methods=["PUT", "PATCH"]),
    Route("/api/v1/servers/{name}", delete_server, methods=["DELETE"]),
    Route("/api/v1/servers/{name}/toggle", toggle_server, methods=["POST"]),
    Route("/api/v1/servers/{name}/refresh", refresh_server, methods=["POST"]),
    Route("/api/v1/servers/{name}/details", server_details, methods=["GET"]),
]
