"""External MCP sources (MCPBox): /api/v1/servers/{name}/sources and /api/v1/sources/{id}."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate
from libs.common.http import json_response, no_content, parse_body, read_json, validate
from libs.common.pagination import paginate_request
from services.registry import permissions, servers, sources
from services.registry.context import Registry
from services.registry.schemas import SourceCreate, SourceFields, SourceImport
from services.registry.store import sources as sources_store


def _reg(request: Request) -> Registry:
    """The registry's shared parts."""
    return request.state.registry


async def create_source(request: Request) -> Response:
    """Add an external MCP source to a server."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    body = await parse_body(request, SourceCreate)
    reg = _reg(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        server = await servers.writable(conn, principal, ref)
        source = await sources.create(reg, conn, server, body, principal.id)
    return json_response(sources.source_out(server, source), 201)


async def list_sources(request: Request) -> Response:
    """A server's sources."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    async with _reg(request).pool.acquire() as conn:
        server = await servers.readable(conn, principal, ref)
        permissions.require_inspect(principal, server)
        rows = await sources_store.list_sources(conn, server["id"])
        items = [
            sources.source_out(server, r, await sources.imported_names(conn, server, r["id"]))
            for r in rows
        ]
    return json_response(paginate_request(request, items))


async def get_source(request: Request) -> Response:
    """One source with its discovered tools."""
    principal = await authenticate(request)
    ref = request.path_params["id"]
    async with _reg(request).pool.acquire() as conn:
        source, server = await sources.get_or_404(conn, ref)
        permissions.require_read(principal, server, ref, sources.missing(ref))
        permissions.require_inspect(principal, server)
        imported = await sources.imported_names(conn, server, source["id"])
    return json_response(sources.source_out(server, source, imported))


async def update_source(request: Request) -> Response:
    """Change a source's name, description, transport, url or headers."""
    principal = await authenticate(request)
    ref = request.path_params["id"]
    body = await parse_body(request, SourceFields)
    reg = _reg(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        source, server = await sources.get_or_404(conn, ref)
        permissions.require_write(principal, server, ref, sources.missing(ref))
        keep = permissions.holds_secrets(principal, server)
        source = await sources.update(reg, conn, server, source, body, keep_secrets=keep)
        imported = await sources.imported_names(conn, server, source["id"])
    return json_response(sources.source_out(server, source, imported))


async def delete_source(request: Request) -> Response:
    """Delete a source and the tools imported from it."""
    principal = await authenticate(request)
    ref = request.path_params["id"]
    reg = _reg(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        source, server = await sources.get_or_404(conn, ref)
        permissions.require_write(principal, server, ref, sources.missing(ref))
        had_tools = source["imported_count"] > 0
        await sources_store.delete_source(conn, source["id"])
        if had_tools:
            await servers.touch(reg, conn, server, ["tools"], principal.id)
    return no_content()


async def discover_source(request: Request) -> Response:
    """Connect to the source and list its tools now."""
    principal = await authenticate(request)
    ref = request.path_params["id"]
    reg = _reg(request)
    async with reg.pool.acquire() as conn:
        source, server = await sources.get_or_404(conn, ref)
        permissions.require_write(principal, server, ref, sources.missing(ref))
    result = await sources.discover(reg, source, principal.id)
    async with reg.pool.acquire() as conn:
        source, server = await sources.get_or_404(conn, ref)
        imported = await sources.imported_names(conn, server, source["id"])
    return json_response({**result, "source": sources.source_out(server, source, imported)})


async def import_source_tools(request: Request) -> Response:
    """Import discovered tools (`{"tools": [...]}`, all when omitted) into the server."""
    principal = await authenticate(request)
    ref = request.path_params["id"]
    body = validate(SourceImport, await read_json(request) if await request.body() else {})
    reg = _reg(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        source, server = await sources.get_or_404(conn, ref)
        permissions.require_write(principal, server, ref, sources.missing(ref))
        imported = await sources.import_tools(reg, conn, server, source, body.tools, principal.id)
    return json_response({"server": server["name"], "imported": imported})


routes = [
    Route("/api/v1/servers/{name}/sources", create_source, methods=["POST"]),
    Route("/api/v1/servers/{name}/sources", list_sources, methods=["GET"]),
    Route("/api/v1/sources/{id}", get_source, methods=["GET"]),
    Route("/api/v1/sources/{id}", update_source, methods=["PUT"]),
    Route("/api/v1/sources/{id}", delete_source, methods=["DELETE"]),
    Route("/api/v1/sources/{id}/discover", discover_source, methods=["POST"]),
    Route("/api/v1/sources/{id}/import", import_source_tools, methods=["POST"]),
]
