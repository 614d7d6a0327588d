"""/api/v1/servers/{name}/shares: which other orgs a server is lent to (platform admins)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import Principal, authenticate, require_platform_admin
from libs.common.http import json_response, no_content, parse_body
from services.registry import orgs, servers, views
from services.registry.context import Registry
from services.registry.schemas import ShareIn
from services.registry.store import servers as servers_store


def _reg(request: Request) -> Registry:
    """The registry's shared parts."""
    return request.state.registry


async def _platform_admin(request: Request) -> Principal:
    """The caller, when a platform admin; else 404 for a server it cannot see, 403 otherwise."""
    principal = await authenticate(request)
    if not principal.is_platform_admin:
        async with _reg(request).pool.acquire() as conn:
            await servers.readable(conn, principal, request.path_params["name"])
        require_platform_admin(principal)
    return principal


async def list_shares(request: Request) -> Response:
    """The orgs the server is shared with."""
    await _platform_admin(request)
    async with _reg(request).pool.acquire() as conn:
        server = await servers.get_or_404(conn, request.path_params["name"])
        rows = await servers_store.list_shares(conn, server["id"])
    return json_response(views.shares_out(server, rows))


async def share_server(request: Request) -> Response:
    """Share the server with an org (by id or slug).

    Its admins may then grant their teams read and execute on it."""
    principal = await _platform_admin(request)
    body = await parse_body(request, ShareIn)
    reg = _reg(request)
    org = await orgs.creation_org(reg, principal, body.org)
    async with reg.pool.acquire() as conn, conn.transaction():
        server = await servers.get_or_404(conn, request.path_params["name"])
        if org is None or org == server["org"]:
            raise orgs.same_org(body.org)
        server = await servers.share(reg, conn, server, org, principal.id)
        rows = await servers_store.list_shares(conn, server["id"])
    return json_response(views.shares_out(server, rows), 201)


async def unshare_server(request: Request) -> Response:
    """Stop sharing the server with an org: its grants there stop working at once."""
    principal = await _platform_admin(request)
    reg = _reg(request)
    org = await orgs.org_id(reg, principal, request.path_params["org"])
    async with reg.pool.acquire() as conn, conn.transaction():
        server = await servers.get_or_404(conn, request.path_params["name"])
        await servers.unshare(reg, conn, server, org, principal.id)
    return no_content()


routes = [
    Route("/api/v1/servers/{name}/shares", list_shares, methods=["GET"]),
    Route("/api/v1/servers/{name}/shares", share_server, methods=["POST"]),
    Route("/api/v1/servers/{name}/shares/{org}", unshare_server, methods=["DELETE"]),
]
