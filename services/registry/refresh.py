"""Refresh: discover a server's offer, reconcile its tools (rug-pull quarantine), record health."""

from __future__ import annotations

import time
import uuid
from typing import Any

import structlog

from libs.common import events as ev
from services.registry import certification, discovery, metrics, review, summaries, views
from services.registry.context import SCHEMA, Registry
from services.registry.store import secrets as secrets_store
from services.registry.store import servers as servers_store
from services.registry.store import tools as tools_store

log = structlog.get_logger()


SANDBOXED = ("stdio", "code")  # listed by the sandbox over NATS, not reached by URL


async def _listing(reg: Registry, server: Any) -> discovery.Listing:
    """Discover through the right path for the server's transport."""
    if server["transport"] in SANDBOXED:
        return await discovery.discover_sandboxed(
            reg.bus,
            server["name"],
            timeout=reg.settings.sandbox_timeout_s,
            transport=server["transport"],
        )
    headers, timeout, allow = await _reach(reg, server)
    return await discovery.discover_remote(
        server["transport"], server["url"], headers, timeout=timeout, allow=allow
    )


async def _reach(reg: Registry, server: Any) -> tuple[dict[str, str], float, list[Any]]:
    """What a remote server is reached with: its header secrets, a timeout, the SSRF allowlist."""
    async with reg.pool.acquire() as conn:
        rows = await secrets_store.list_secrets(conn, [server["id"]])
        allow = await reg.allowlist(conn)
    headers = views.secrets_by_kind(rows, reg.box)["header"]
    return headers, min(float(server["timeout_s"]), reg.settings.discovery_timeout_s), allow


async def probe(reg: Registry, server: Any) -> bool:
    """Whether a remote server answers a session's opening (the light health check).

    Nothing is written: a server that does not answer gets a full refresh, which records it."""
    headers, timeout, allow = await _reach(reg, server)
    try:
        await discovery.probe_remote(
            server["transport"], server["url"], headers, timeout=timeout, allow=allow
        )
    except discovery.DiscoveryFailed:
        return False
    return True


async def refresh(reg: Registry, server_id: uuid.UUID, actor: str | None = None) -> dict[str, Any]:
    """Check and discover one server now; returns {"status", "error", "changes"}."""
    async with reg.pool.acquire() as conn:
        server = await servers_store.get_server_by_id(conn, server_id)
    if server is None:
        return {"status": "unknown", "error": "deleted", "changes": []}
    started = time.perf_counter()
    try:
        listing: discovery.Listing | None = await _listing(reg, server)
        status, error = "healthy", None
    except discovery.DiscoveryFailed as exc:
        listing, status, error = None, exc.status, str(exc)
    metrics.observe_discovery(
        server["transport"], listing is not None, time.perf_counter() - started
    )
    async with reg.pool.acquire() as conn, conn.transaction():
        await servers_store.lock_server(conn, server_id)
        current = await servers_store.get_server_by_id(conn, server_id)
        if current is None:
            return {"status": "unknown", "error": "deleted", "changes": []}
        changes, items = await _reconcile(reg, conn, current, listing) if listing else ([], [])
        listing_changed = bool(changes) or (
            listing is not None
            and (listing.resources != current["resources"] or listing.prompts != current["prompts"])
        )
        version = await servers_store.record_discovery(
            conn,
            server_id,
            status=status,
            error=error,
            latency_ms=listing.latency_ms if listing else None,
            resources=listing.resources if listing else None,
            prompts=listing.prompts if listing else None,
            bump=listing_changed or status != current["status"],
        )
        tool_count = len(listing.tools) if listing else current["tool_count"]
        if status != current["status"]:
            payload = ev.ServerStatusChanged(
                current["name"],
                str(server_id),
                version,
                status,
                current["status"],
                error,
                listing.latency_ms if listing else None,
                tool_count,
                ev.now_iso(),
            )
            await reg.emit(
                conn,
                ev.SERVER_STATUS.event(payload, source=SCHEMA, actor=actor, org=current["org"]),
            )
        if listing_changed:
            # one event for the whole listing: its summary names each changed tool
            payload = ev.ServerChanged(current["name"], str(server_id), version, ["tools"])
            for part in summaries.with_tools(payload, items):
                await reg.emit(
                    conn,
                    ev.SERVER_UPDATED.event(part, source=SCHEMA, actor=actor, org=current["org"]),
                )
    async with reg.pool.acquire() as conn:
        await metrics.update_gauges(conn)
    if status != current["status"]:
        log.info("server_status_changed", server=current["name"], status=status, error=error)
    return {
        "status": status,
        "error": error,
        "tool_count": tool_count,
        "changes": [{"tool": c.name, "change": c.kind, "state": c.state} for c in changes],
    }


async def _reconcile(
    reg: Registry, conn: Any, server: Any, listing: discovery.Listing
) -> tuple[list[review.ToolChange], list[dict[str, Any]]]:
    """Apply a fresh listing to the stored tools; the changes and their summary items."""
    # tools imported from external sources are reconciled by their source, not the upstream
    stored = {
        t["name"]: dict(t)
        for t in await tools_store.list_for_servers(conn, [server["id"]])
        if t["source_id"] is None
    }
    cfg = await reg.config(conn)
    refs = await tools_store.foreign_tools(conn, server["id"])
    changes = review.plan(
        stored,
        listing.tools,
        first_discovery=server["discovered_at"] is None,
        # code tools are reviewed in the sandbox (its approvals) before the registry sees them
        policy="auto_approve" if server["transport"] == "code" else cfg["new_tool_policy"],
        foreign_tools=review.foreign_names(refs, cfg["tool_name_separator"]),
    )
    # a server from the catalog runs only the tools its certified snapshot describes
    certified = await certification.snapshot_tools(conn, server["catalog_version_id"])
    certification.hold_to_snapshot(changes, certified)
    return changes, await apply_changes(conn, server, changes)


async def apply_changes(
    conn: Any,
    server: Any,
    changes: list[review.ToolChange],
    source_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Store planned tool changes (of the upstream, or of one external source) in two statements.

    Returns the summary item of each change, which the caller publishes in one `server.updated`
    (summaries.with_tools)."""
    disabled = set(server["disabled_tools"])
    writes: list[tools_store.ToolWrite] = []
    removed: list[str] = []
    items: list[dict[str, Any]] = []
    for change in changes:
        fp = None
        if change.kind == "removed":
            removed.append(change.name)
        else:
            fp = review.fingerprint(change.tool)
            approve = change.state == "approved" and change.kind in ("discovered", "restored")
            writes.append(
                tools_store.ToolWrite(change.tool, fp, change.state, change.flags, approve)
            )
        routable = server["enabled"] and change.state == "approved" and change.name not in disabled
        items.append(summaries.tool_item(change, fp, bool(routable)))
        if change.kind in ("quarantined", "discovered") and change.state == "quarantined":
            log.warning(
                "tool_quarantined",
                server=server["name"],
                tool=change.name,
                reason=change.kind,
                flags=change.flags,
            )
    if removed:
        await tools_store.delete_tools(conn, server["id"], removed)
    if writes:
        await tools_store.upsert_tools(conn, server["id"], writes, source_id)
    return items
