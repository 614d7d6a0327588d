"""/api/v1/import and /api/v1/export in the generic, Claude, VS Code and mcphub formats."""

from __future__ import annotations

from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common import rpc_types
from libs.common.authn import Principal, authenticate, require_platform_admin
from libs.common.errors import ApiError, NotFound, Unprocessable
from libs.common.http import json_response, read_json, validate
from services.registry import importing, permissions, servers, transfer, views
from services.registry.context import Registry
from services.registry.schemas import ImportBody
from services.registry.store import secrets as secrets_store
from services.registry.store import servers as servers_store

log = structlog.get_logger()


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
    doc = transfer.export(items, fmt)
    if fmt == "generic" and principal.is_platform_admin:  # code tools are platform admins'
        try:
            doc["code_tools"] = await _code_tools(reg, None)
        except ApiError as exc:  # no sandbox answering: the servers still export, said once
            log.warning("code_tools_not_exported", error=exc.code, status=exc.status)
    return json_response(doc)


async def _code_tools(reg: Registry, servers: list[str] | None) -> list[Any]:
    """The sandbox's approved code tools (of `servers`, or all) as an export carries them."""
    reply = await reg.bus.call(
        rpc_types.SANDBOX_CODE_TOOLS_EXPORT, rpc_types.CodeToolsExport(servers), timeout=10
    )
    return reply.tools


async def export_server(request: Request) -> Response:
    """One visible server (name, path or id) as a config file, in the whole export's format."""
    principal = await authenticate(request)
    fmt, reveal = _export_params(request, principal)
    ref = request.path_params["ref"]
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn:
        row = await servers.readable(conn, principal, ref)
        if row["transport"] == "code" and not (fmt == "generic" and principal.is_platform_admin):
            raise NotFound(f"Server {ref!r} not found.", details={"server": ref})
        items = (
            []
            if row["transport"] == "code"
            else await _export_items(reg, conn, principal, [row], reveal)
        )
    doc = transfer.export(items, fmt)
    if row["transport"] == "code":  # a code server travels as its code tools
        doc["code_tools"] = await _code_tools(reg, [row["name"]])
    return json_response(doc)


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
    code_tools = body.config.get("code_tools") if fmt == "generic" else None
    reg: Registry = request.state.registry
    if code_tools is not None:  # checked (validity, names) before any server is imported
        await _import_code_tools(reg, principal, code_tools, body.on_conflict, dry_run=True)
    report = await importing.run(
        reg,
        principal,
        items,
        fmt=fmt,
        dry_run=body.dry_run,
        on_conflict=body.on_conflict,
    )
    if code_tools is not None:
        report["code_tools"] = await _import_code_tools(
            reg, principal, code_tools, body.on_conflict, dry_run=body.dry_run
        )
    return json_response(report, 200 if body.dry_run else 201)


async def _import_code_tools(
    reg: Registry, principal: Principal, tools: Any, on_conflict: str, *, dry_run: bool
) -> dict[str, Any]:
    """Create the export's code tools in the sandbox (platform admins; all or nothing there)."""
    require_platform_admin(principal)
    if not isinstance(tools, list):
        raise Unprocessable(
            "code_tools must be a list.", details={"fields": {"config.code_tools": "list"}}
        )
    request = rpc_types.CodeToolsImport(
        tools=tools,
        actor=principal.id,
        on_conflict="fail" if on_conflict == "fail" else "skip",
        dry_run=dry_run,
    )
    reply = await reg.bus.call(rpc_types.SANDBOX_CODE_TOOLS_IMPORT, request, timeout=30)
    return {"created": reply.created, "skipped": reply.skipped}


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
