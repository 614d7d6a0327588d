"""External catalog sync and LLM-written descriptions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common import ssrf
from libs.common.authn import authenticate, require_platform_admin
from libs.common.errors import Unprocessable
from libs.common.http import json_response, read_json, validate
from services.registry import catalog_sync, importing, llm, servers
from services.registry.context import Registry
from services.registry.schemas import SyncBody
from services.registry.store import servers as servers_store
from services.registry.store import tools as tools_store


async def sync_catalog(request: Request) -> Response:
    """Add the servers of an external catalog (MCP registry or ModelScope) not yet registered."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    body = validate(SyncBody, await read_json(request) if await request.body() else {})
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn:
        cfg = await reg.config(conn, reveal=True)
        allow = await reg.allowlist(conn)
    url = body.url or cfg.get("catalog_sync_url")
    if not url:
        raise Unprocessable(
            "No catalog URL given or configured (catalog_sync_url).",
            details={"fields": {"url": "required"}},
        )
    fmt = body.format if body.format != "auto" else cfg.get("catalog_sync_format") or "auto"
    token = cfg.get("catalog_sync_token") or cfg.get("modelscope_token")
    try:
        kind, items = await catalog_sync.fetch(
            url, token or None, fmt, allow, reg.settings.discovery_timeout_s
        )
    except ssrf.SsrfRefused as exc:
        raise Unprocessable(
            "The catalog URL is not allowed.", details={"fields": {"url": f"the URL {exc}"}}
        ) from None
    report = await importing.run(
        reg, principal, items, fmt=kind, dry_run=body.dry_run, on_conflict="skip", lenient=True
    )
    return json_response({"source": url, **report})


async def generate_description(request: Request) -> Response:
    """Write the server's description with the configured LLM."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn:
        server = await servers.writable(conn, principal, ref)
        cfg = await reg.config(conn, reveal=True)
        allow = await reg.allowlist(conn)
        tools = await tools_store.list_for_servers(conn, [server["id"]])
    text = await llm.describe(cfg, server, tools, reg.settings.llm_timeout_s, allow)
    async with reg.pool.acquire() as conn, conn.transaction():
        await servers.touch(reg, conn, server, ["description"], principal.id, {"description": text})
    return json_response({"server": server["name"], "description": text})


async def analyze_all(request: Request) -> Response:
    """Describe every server without a description (`force=true`: every server)."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    force = request.query_params.get("force", "").lower() in ("1", "true", "yes")
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn:
        cfg = await reg.config(conn, reveal=True)
        allow = await reg.allowlist(conn)
        llm.configured(cfg)
        rows = [s for s in await servers_store.list_all(conn) if force or not s["description"]]
    report: dict[str, list] = {"updated": [], "failed": []}
    for server in rows:
        async with reg.pool.acquire() as conn:
            tools = await tools_store.list_for_servers(conn, [server["id"]])
        try:
            text = await llm.describe(cfg, server, tools, reg.settings.llm_timeout_s, allow)
        except Exception as exc:  # one server's failure must not stop the batch
            report["failed"].append({"server": server["name"], "error": str(exc)})
            continue
        async with reg.pool.acquire() as conn, conn.transaction():
            await servers.touch(
                reg, conn, server, ["description"], principal.id, {"description": text}
            )
        report["updated"].append(server["name"])
    return json_response(report)


routes = [
    Route("/api/v1/servers/sync", sync_catalog, methods=["POST"]),
    Route("/api/v1/servers/sync-modelscope", sync_catalog, methods=["POST"]),
    Route("/api/v1/servers/analyze-all", analyze_all, methods=["POST"]),
    Route("/api/v1/servers/{name}/generate-description", generate_description, methods=["POST"]),
]
