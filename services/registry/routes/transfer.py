"""/api/v1/import and /api/v1/export in the generic, Claude, VS Code and mcphub formats."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import Principal, authenticate, require_platform_admin
from libs.common.errors import NotFound, Unprocessable
from libs.common.http import json_response, read_json, validate
from services.registry import importing, permissions, servers, transfer, views
from services.registry.context import Registry
from services.registry.schemas import ImportBody
from services.registry.store import secrets as secrets_store
from services.registry.store import servers as servers_store


def _export_params(request: Request, principal: Principal) -> tuple[str, bool]:
    """The `format` and whether secrets are revealed (`include_secrets=true`, platform admin)."""
    fmt = request.query_params.get("format", "generic")
    if fmt not in transfer.FORMATS:
        raise Unprocessable(
            "Unknown format.",
            details={"fields": {"format": "must be one of " + ", ".join(transfer.FORMATS)}},
        )
    reveal = request.query_params.get("include_secrets", "").lower() in ("1", "true", "yes")
    if reveal:
        require_platform_admin(principal)
    return fmt, reveal


async def _export_items(
    reg: Registry, conn: Any, principal: Principal, rows: list[Any], reveal: bool
) -> list[dict[str, Any]]:
    """The public views of `rows`, with their headers and env in clear when `reveal`."""
    items = await servers.public_views(conn, rows, principal)
    if reveal:
        secrets = await secrets_store.list_secrets(conn, [s["id"] for s in rows])
        for item in items:
            plain = views.secrets_by_kind(
                [r for r in secrets if str(r["server_id"]) == item["id"]], reg.box
            )
            item["headers"], item["env"] = plain["header"], plain["env"]
    return items


async def export_servers(request: Request) -> Response:
    """Visible servers as a config file (`format`; `include_secrets=true` for platform admins)."""
    principal = await authenticate(request)
    fmt, reveal = _export_params(request, principal)
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn:
        rows = [
            s
            for s in await servers_store.list_all(conn)
            if s["transport"] != "code" and permissions.can(principal, "read", s)
        ]
        items = await _export_items(reg, conn, principal, rows, reveal)
    return json_response(transfer.export(items, fmt))


async def export_server(request: Request) -> Response:
    """One visible server (name, path or id) as a config file, in the whole export's format."""
    principal = await authenticate(request)
    fmt, reveal = _export_params(request, principal)
    ref = request.path_params["ref"]
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn:
        row = await servers.readable(conn, principal, ref)
        if row["transport"] == "code":
            raise NotFound(f"Server {ref!r} not found.", details={"server": ref})
        items = await _export_items(reg, conn, principal, [row], reveal)
    return json_response(transfer.export(items, fmt))


async def import_servers(request: Request) -> Response:
    """Import a config (format auto-detected), all-or-nothing; `dry_run` lists what would change."""
    principal = await authenticate(request)
    raw = await read_json(request)
    if not isinstance(raw, dict):
        raise Unprocessable(
            "The body must be a JSON object.", details={"fields": {"body": "object"}}
        )
    params = request.query_params
    wrapped = {"config": raw} if "config" not in raw else raw
    for key in ("format", "on_conflict"):
        if key in params:
            wrapped[key] = params[key]
    if "dry_run" in params:
        wrapped["dry_run"] = params["dry_run"].lower() in ("1", "true", "yes")
    body = validate(ImportBody, wrapped)
    fmt = transfer.detect(body.config) if body.format == "auto" else body.format
    items = transfer.parse(body.config, fmt)
    report = await importing.run(
        request.state.registry,
        principal,
        items,
        fmt=fmt,
        dry_run=body.dry_run,
        on_conflict=body.on_conflict,
    )
    return json_response(report, 200 if body.dry_run else 201)


routes = [
    Route("/api/v1/export", export_servers, methods=["GET"]),
    Route("/api/v1/servers/export", export_servers, methods=["GET"]),
    Route("/api/v1/import", import_servers, methods=["POST"]),
    Route("/api/v1/servers/import", import_servers, methods=["POST"]),
    # MCPBox's paths: /api/export/servers, /api/export/servers/{id}, /api/export/import
    Route("/api/v1/export/servers", export_servers, methods=["GET"]),
    Route("/api/v1/export/servers/{ref}", export_server, methods=["GET"]),
    Route("/api/v1/export/import", import_servers, methods=["POST"]),
]
