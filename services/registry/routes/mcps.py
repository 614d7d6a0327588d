"""/api/v1/mcps (alias /api/v1/catalog): the public catalog and org admins' MCPs and versions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import Principal, authenticate, optional_principal
from libs.common.errors import NotFound, PayloadTooLarge, UnsupportedMediaType
from libs.common.http import json_response, no_content, parse_body, read_json, validate
from libs.common.sql import Where
from libs.common.tenancy import org_id
from services.registry import orgs
from services.registry.catalog import access, listing, mcps, versions
from services.registry.catalog.rate import public
from services.registry.catalog.schemas import (
    GitVersion,
    McpCreate,
    McpUpdate,
    ServerJsonVersion,
)
from services.registry.context import Registry
from services.registry.settings import RegistrySettings
from services.registry.store import catalog as store

FILTERS = ("category", "tag", "featured", "language")
TARBALL_TYPES = ("application/gzip", "application/x-gzip", "application/x-tar",
                 "application/octet-stream")  # fmt: skip
# the one route whose body may exceed SWITCHBOARD_MAX_BODY_BYTES (nginx has the same location)
UPLOAD_PATH = r"^/api/v1/mcps/[^/]+/versions$"
MULTIPART_SLACK = 64 * 1024  # a multipart upload's boundaries and headers around the tarball


def upload_limit(settings: RegistrySettings) -> int:
    """The body limit of the version upload route: the catalog's tarball limit (+ multipart)."""
    return settings.catalog_max_tarball_bytes + MULTIPART_SLACK


def _reg(request: Request) -> Registry:
    """The registry's shared parts."""
    return request.state.registry


@public
async def list_mcps(request: Request) -> Response:
    """Search the catalog: public MCPs, and the caller's org's private ones."""
    principal = await optional_principal(request)
    win = listing.window(request, FILTERS)
    where = Where()
    store.visible_to(where, access.reader_orgs(principal))
    store.filter_mcps(where, win.filters, win.query.q)
    async with _reg(request).pool.acquire() as conn:
        rows, total = await store.list_mcps(conn, where, win.limit, win.offset)
    return json_response(listing.body([mcps.mcp_out(r) for r in rows], total, win, "mcps"))


@public
async def get_mcp(request: Request) -> Response:
    """One MCP by id or name, with its latest version and snapshot summary."""
    principal = await optional_principal(request)
    async with _reg(request).pool.acquire() as conn:
        mcp = await access.readable_mcp(conn, principal, request.path_params["mcp"])
        return json_response(await mcps.mcp_detail(conn, mcp))


async def _creation_org(reg: Registry, principal: Principal, ref: str | None) -> str | None:
    """The org a new MCP belongs to: one the caller administers (default: theirs)."""
    if principal.is_platform_admin:
        return await orgs.creation_org(reg, principal, ref)
    org = org_id(principal, ref) if ref else principal.org
    if org is None or principal.role_in(org) is None:
        raise NotFound(f"Organisation {ref!r} not found.", details={"org": ref})
    access.require_mcp_admin(principal, {"org": org, "name": "new"})
    return org


async def create_mcp(request: Request) -> Response:
    """An org admin adds an MCP to their org (private unless a platform admin says public)."""
    principal = await authenticate(request)
    body = await parse_body(request, McpCreate)
    reg = _reg(request)
    org = await _creation_org(reg, principal, body.org)
    fields = body.model_dump(exclude_unset=True)
    async with reg.pool.acquire() as conn, conn.transaction():
        row = await mcps.create(reg, conn, fields, org, principal.id, principal.is_platform_admin)
        return json_response(await mcps.mcp_detail(conn, row), 201)


async def update_mcp(request: Request) -> Response:
    """Change an MCP's metadata (its org's admins)."""
    principal = await authenticate(request)
    body = await parse_body(request, McpUpdate)
    reg = _reg(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        mcp = await access.readable_mcp(conn, principal, request.path_params["mcp"])
        access.require_mcp_admin(principal, mcp)
        fields = body.model_dump(exclude_unset=True)
        row = await mcps.update(reg, conn, mcp, fields, principal.id, principal.is_platform_admin)
        return json_response(await mcps.mcp_detail(conn, row))


async def delete_mcp(request: Request) -> Response:
    """Delete an MCP with its versions (its org's admins)."""
    principal = await authenticate(request)
    reg = _reg(request)
    async with reg.pool.acquire() as conn, conn.transaction():
        mcp = await access.readable_mcp(conn, principal, request.path_params["mcp"])
        access.require_mcp_admin(principal, mcp)
        await mcps.delete(reg, conn, mcp, principal.id)
    return no_content()


@public
async def list_versions(request: Request) -> Response:
    """An MCP's versions, newest first."""
    principal = await optional_principal(request)
    win = listing.window(request)
    async with _reg(request).pool.acquire() as conn:
        mcp = await access.readable_mcp(conn, principal, request.path_params["mcp"])
        rows, total = await store.list_versions(conn, mcp["id"], win.limit, win.offset)
    items = [versions.version_out(mcp, r) for r in rows]
    return json_response(listing.body(items, total, win, "versions"))


@public
async def get_version(request: Request) -> Response:
    """One version (by id or visible_version) with its source's size, SHA-256 and tarball URL."""
    principal = await optional_principal(request)
    params = request.path_params
    async with _reg(request).pool.acquire() as conn:
        mcp, version = await access.readable_version(
            conn, principal, params["mcp"], params["version"]
        )
    return json_response(versions.version_out(mcp, version))


@public
async def get_tarball(request: Request) -> Response:
    """A version's normalised source tarball."""
    principal = await optional_principal(request)
    params = request.path_params
    async with _reg(request).pool.acquire() as conn:
        mcp, version = await access.readable_version(
            conn, principal, params["mcp"], params["version"]
        )
        data = await store.get_tarball(conn, version["id"])
    name = f"{mcp['name'].replace('/', '_')}-{version['visible_version']}.tar.gz"
    return Response(
        data or b"",
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def create_version(request: Request) -> Response:
    """A new version from git (JSON), a tarball (body or multipart `file`) or a server.json."""
    principal = await authenticate(request)
    reg = _reg(request)
    async with reg.pool.acquire() as conn:
        mcp = await access.readable_mcp(conn, principal, request.path_params["mcp"])
    access.require_mcp_admin(principal, mcp)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    named = request.query_params.get("version") or None
    if ctype in TARBALL_TYPES:
        out = await versions.add_tarball_version(
            reg, mcp, await request.body(), principal.id, named
        )
    elif ctype == "multipart/form-data":
        data, named = await _uploaded(request, named)
        out = await versions.add_tarball_version(reg, mcp, data, principal.id, named)
    else:
        await _within_platform_cap(request, reg.settings)
        doc = await read_json(request)
        if isinstance(doc, dict) and "server_json" in doc:
            sj = validate(ServerJsonVersion, doc)
            out = await versions.add_server_json_version(
                reg, mcp, sj.server_json, principal.id, sj.version, sj.ref
            )
        else:
            git = validate(GitVersion, doc)
            out = await versions.add_git_version(
                reg, mcp, git.ref, principal.id, url=git.url, version=git.version
            )
    return json_response(out, 201)


async def _within_platform_cap(request: Request, settings: RegistrySettings) -> None:
    """JSON on the upload route keeps the platform's body cap (only tarballs may be larger)."""
    if len(await request.body()) > settings.max_body_bytes:
        raise PayloadTooLarge(
            f"The body is larger than {settings.max_body_bytes} bytes.",
            details={"limit": settings.max_body_bytes},
        )


async def _uploaded(request: Request, named: str | None) -> tuple[bytes, str | None]:
    """The `file` field (and an optional `version` field) of a multipart upload."""
    limit = _reg(request).settings.catalog_max_tarball_bytes
    async with request.form(max_files=1, max_fields=10, max_part_size=limit) as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise UnsupportedMediaType(
                "A multipart upload needs the tarball in the field `file`.",
                details={"field": "file"},
            )
        version = form.get("version")
        return await upload.read(), (version if isinstance(version, str) and version else named)


routes = [
    Route("/api/v1/mcps", list_mcps, methods=["GET"]),
    Route("/api/v1/catalog", list_mcps, methods=["GET"]),
    Route("/api/v1/mcps", create_mcp, methods=["POST"]),
    Route("/api/v1/mcps/{mcp}", get_mcp, methods=["GET"]),
    Route("/api/v1/mcps/{mcp}", update_mcp, methods=["PUT", "PATCH"]),
    Route("/api/v1/mcps/{mcp}", delete_mcp, methods=["DELETE"]),
    Route("/api/v1/mcps/{mcp}/versions", list_versions, methods=["GET"]),
    Route("/api/v1/mcps/{mcp}/versions", create_version, methods=["POST"]),
    Route("/api/v1/mcps/{mcp}/versions/{version}", get_version, methods=["GET"]),
    Route("/api/v1/mcps/{mcp}/versions/{version}/tarball", get_tarball, methods=["GET"]),
]
