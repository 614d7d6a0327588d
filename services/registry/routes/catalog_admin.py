"""/api/v1/admin/mcps, /categories, /tags: platform admins curate the catalog (seed "Admin")."""

from __future__ import annotations

import uuid

import asyncpg
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import Principal, authenticate, require_platform_admin
from libs.common.errors import Conflict, NotFound
from libs.common.http import json_response, no_content, parse_body
from libs.common.pagination import paginate_request
from libs.common.sql import Where
from services.registry import orgs
from services.registry.catalog import listing, mcps
from services.registry.catalog.schemas import (
    CategoryBody,
    FeaturedBody,
    McpCreate,
    McpUpdate,
    TagCreate,
    TagsBody,
    TagUpdate,
    TaxonomyCreate,
    TaxonomyUpdate,
)
from services.registry.context import Registry
from services.registry.store import catalog as store

FILTERS = ("org", "visibility", "category", "featured", "tag", "language")


async def _admin(request: Request) -> tuple[Principal, Registry]:
    """The platform admin calling, and the registry's shared parts."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    return principal, request.state.registry


async def _mcp(conn, ref: str):  # noqa: ANN001, ANN202 - a connection and a record
    """Any MCP by id or name."""
    rows = await store.find_mcps(conn, ref, None)
    if not rows:
        raise NotFound(f"MCP {ref!r} not found.", details={"mcp": ref})
    return rows[0]


async def list_mcps(request: Request) -> Response:
    """Every MCP, private ones included (filters: q, org, visibility, category, featured)."""
    _, reg = await _admin(request)
    win = listing.window(request, FILTERS)
    where = Where()
    store.filter_mcps(where, win.filters, win.query.q)
    async with reg.pool.acquire() as conn:
        rows, total = await store.list_mcps(conn, where, win.limit, win.offset)
    return json_response(listing.body([mcps.mcp_out(r) for r in rows], total, win, "mcps"))


async def get_mcp(request: Request) -> Response:
    """Any MCP in full."""
    _, reg = await _admin(request)
    async with reg.pool.acquire() as conn:
        return json_response(
            await mcps.mcp_detail(conn, await _mcp(conn, request.path_params["mcp"]))
        )


async def create_mcp(request: Request) -> Response:
    """An MCP of an org (`org`) or of the platform (none given)."""
    principal, reg = await _admin(request)
    body = await parse_body(request, McpCreate)
    org = await orgs.creation_org(reg, principal, body.org)
    fields = body.model_dump(exclude_unset=True)
    async with reg.pool.acquire() as conn, conn.transaction():
        row = await mcps.create(reg, conn, fields, org, principal.id, True)
        return json_response(await mcps.mcp_detail(conn, row), 201)


async def _change(request: Request, fields: dict) -> Response:
    """Apply `fields` to the MCP of the path."""
    principal, reg = await _admin(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        mcp = await _mcp(conn, request.path_params["mcp"])
        row = await mcps.update(reg, conn, mcp, fields, principal.id, True)
        return json_response(await mcps.mcp_detail(conn, row))


async def update_mcp(request: Request) -> Response:
    """Change an MCP's metadata."""
    body = await parse_body(request, McpUpdate)
    return await _change(request, body.model_dump(exclude_unset=True))


async def set_category(request: Request) -> Response:
    """Assign a category (id or slug) or none."""
    body = await parse_body(request, CategoryBody)
    return await _change(request, {"category": body.category})


async def set_tags(request: Request) -> Response:
    """Replace an MCP's tags."""
    body = await parse_body(request, TagsBody)
    return await _change(request, {"tags": body.tags})


async def set_featured(request: Request) -> Response:
    """Feature an MCP, or not."""
    body = await parse_body(request, FeaturedBody)
    return await _change(request, {"featured": body.featured})


async def delete_mcp(request: Request) -> Response:
    """Delete an MCP for good, with its versions."""
    principal, reg = await _admin(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        await mcps.delete(reg, conn, await _mcp(conn, request.path_params["mcp"]), principal.id)
    return no_content()


def _table(request: Request) -> str:
    """`categories` or `tags`, from the path."""
    return "categories" if "/categories" in request.url.path else "tags"


async def list_taxonomy(request: Request) -> Response:
    """Every category (or tag)."""
    _, reg = await _admin(request)
    async with reg.pool.acquire() as conn:
        rows = await store.list_taxonomy(conn, _table(request))
    return json_response(paginate_request(request, [mcps.plain(r) for r in rows]))


async def _taxonomy(conn, table: str, ref: str):  # noqa: ANN001, ANN202 - connection, record
    row = await store.get_taxonomy(conn, table, ref)
    if row is None:
        raise NotFound(f"{table[:-1].title()} {ref!r} not found.", details={"id": ref})
    return row


def _taken(slug: str) -> Conflict:
    return Conflict(f"{slug!r} already exists.", details={"slug": slug})


async def create_taxonomy(request: Request) -> Response:
    """A new category (or tag); its slug is unique."""
    _, reg = await _admin(request)
    table = _table(request)
    body = await parse_body(request, TaxonomyCreate if table == "categories" else TagCreate)
    async with reg.pool.acquire() as conn, conn.transaction():
        try:
            row_id = await store.insert_taxonomy(conn, table, body.model_dump(exclude_none=True))
        except asyncpg.UniqueViolationError:
            raise _taken(body.slug) from None
        return json_response(mcps.plain(await _taxonomy(conn, table, str(row_id))), 201)


async def update_taxonomy(request: Request) -> Response:
    """Change a category (or tag); a slug another one has is a conflict."""
    _, reg = await _admin(request)
    table = _table(request)
    body = await parse_body(request, TaxonomyUpdate if table == "categories" else TagUpdate)
    async with reg.pool.acquire() as conn, conn.transaction():
        row = await _taxonomy(conn, table, request.path_params["id"])
        fields = body.model_dump(exclude_unset=True)
        try:
            await store.update_taxonomy(conn, table, row["id"], fields)
        except asyncpg.UniqueViolationError:
            raise _taken(fields["slug"]) from None
        return json_response(mcps.plain(await _taxonomy(conn, table, str(row["id"]))))


async def delete_taxonomy(request: Request) -> Response:
    """Delete a category (its MCPs keep none) or a tag (taken off its MCPs)."""
    _, reg = await _admin(request)
    table = _table(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        row = await _taxonomy(conn, table, request.path_params["id"])
        await store.delete_taxonomy(conn, table, uuid.UUID(str(row["id"])))
    return no_content()


routes = [
    Route("/api/v1/admin/mcps", list_mcps, methods=["GET"]),
    Route("/api/v1/admin/mcps", create_mcp, methods=["POST"]),
    Route("/api/v1/admin/mcps/{mcp}", get_mcp, methods=["GET"]),
    Route("/api/v1/admin/mcps/{mcp}", update_mcp, methods=["PUT", "PATCH"]),
    Route("/api/v1/admin/mcps/{mcp}", delete_mcp, methods=["DELETE"]),
    Route("/api/v1/admin/mcps/{mcp}/category", set_category, methods=["PATCH", "PUT"]),
    Route("/api/v1/admin/mcps/{mcp}/tags", set_tags, methods=["PATCH", "PUT"]),
    Route("/api/v1/admin/mcps/{mcp}/featured", set_featured, methods=["POST", "PATCH"]),
    *(
        route
        for kind in ("categories", "tags")
        for route in (
            Route(f"/api/v1/admin/{kind}", list_taxonomy, methods=["GET"]),
            Route(f"/api/v1/admin/{kind}", create_taxonomy, methods=["POST"]),
            Route(f"/api/v1/admin/{kind}/{{id}}", update_taxonomy, methods=["PUT", "PATCH"]),
            Route(f"/api/v1/admin/{kind}/{{id}}", delete_taxonomy, methods=["DELETE"]),
        )
    ),
]
