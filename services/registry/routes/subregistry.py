"""/v0.1/servers: the official MCP registry's read API, served from the catalog."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import optional_principal
from libs.common.errors import NotFound, Unprocessable
from libs.common.http import json_response
from libs.common.sql import Where
from services.registry.catalog import access, subregistry
from services.registry.catalog.rate import public
from services.registry.context import Registry
from services.registry.store import catalog as store

DEFAULT_LIMIT = 30
MAX_LIMIT = 100


def _reg(request: Request) -> Registry:
    """The registry's shared parts."""
    return request.state.registry


def _limit(request: Request) -> int:
    """`limit` from 1 to 100 (default 30)."""
    raw = request.query_params.get("limit") or str(DEFAULT_LIMIT)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise Unprocessable(
            "Invalid list parameters.", details={"fields": {"limit": "must be from 1 to 100"}}
        )
    return int(raw)


async def _where(request: Request) -> Where:
    """Public MCPs (and the caller's org's private ones), with their versions."""
    where = Where()
    store.visible_to(where, access.reader_orgs(await optional_principal(request)))
    return where


@public
async def list_servers(request: Request) -> Response:
    """ServerListResponse: every version (`version=latest`: latest only), `search` on names."""
    params = request.query_params
    limit = _limit(request)
    where = await _where(request)
    filters: dict = {}
    if since := params.get("updated_since"):
        try:
            filters["updated_since"] = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise Unprocessable(
                "Invalid list parameters.",
                details={"fields": {"updated_since": "must be an RFC 3339 time"}},
            ) from None
    store.filter_mcps(where, filters, None)
    if search := params.get("search"):
        where.add("m.name ILIKE {}", f"%{search}%")
    if params.get("version") == "latest":
        where.add("v.id = lv.id")
    after = subregistry.parse_cursor(params.get("cursor"))
    async with _reg(request).pool.acquire() as conn:
        rows = await store.published_versions(conn, where, limit + 1, after)
    page = rows[:limit]
    cursor = subregistry.cursor_of(page[-1]) if len(rows) > limit else None
    return json_response(subregistry.server_list(page, cursor))


async def _versions(request: Request, name: str) -> list:
    where = await _where(request)
    where.add("m.name = {}", name)
    async with _reg(request).pool.acquire() as conn:
        rows = await store.published_versions(conn, where, 10_000, None)
    if not rows:
        raise NotFound(f"Server {name!r} not found.", details={"server": name})
    return rows


@public
async def list_versions(request: Request) -> Response:
    """Every version of one server."""
    rows = await _versions(request, request.path_params["name"])
    return json_response(subregistry.server_list(rows, None))


@public
async def get_version(request: Request) -> Response:
    """One version of a server (`latest` accepted): a ServerResponse."""
    name, wanted = request.path_params["name"], request.path_params["version"]
    for row in await _versions(request, name):
        if (wanted == "latest" and row["is_latest"]) or wanted in (
            subregistry.version_name(row),
            row["visible_version"],
        ):
            return json_response(subregistry.server_response(row))
    raise NotFound(
        f"Version {wanted!r} of server {name!r} not found.",
        details={"server": name, "version": wanted},
    )


routes = [
    Route("/v0.1/servers", list_servers, methods=["GET"]),
    Route("/v0.1/servers/{name:path}/versions", list_versions, methods=["GET"]),
    Route("/v0.1/servers/{name:path}/versions/{version}", get_version, methods=["GET"]),
]
