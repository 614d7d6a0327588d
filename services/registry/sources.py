"""External MCP sources: remote endpoints whose tools are discovered and imported into a server.

Imported tools live with the server's tools (`source_id` set); importing is the admin's approval.
A later discovery of the source applies the rug-pull rules to what was imported: a changed
definition is quarantined, a tool the source no longer lists is removed.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import asyncpg

from libs.common import ssrf
from libs.common.errors import Conflict, NotFound, Unprocessable
from services.registry import discovery, metrics, refresh, review, servers
from services.registry.context import Registry
from services.registry.crypto import MASK, Sealed
from services.registry.schemas import SourceCreate, SourceFields
from services.registry.store import servers as servers_store
from services.registry.store import sources as sources_store
from services.registry.store import tools as tools_store


def _iso(value: Any) -> str | None:
    """RFC 3339 UTC text of a timestamp."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def aad(source_id: Any) -> str:
    """Associated data binding sealed headers to their source."""
    return f"source:{source_id}:headers"


def headers_of(reg: Registry, source: Any) -> dict[str, str]:
    """The source's headers, decrypted."""
    if source["ciphertext"] is None:
        return {}
    sealed = Sealed(source["nonce"], source["ciphertext"], source["key_id"])
    return json.loads(reg.box.open(sealed, aad(source["id"])))


def source_out(server: Any, source: Any, imported: set[str] | None = None) -> dict[str, Any]:
    """The public view: header values masked, discovered tools with an `imported` flag."""
    imported = imported or set()
    return {
        "id": str(source["id"]),
        "server": server["name"],
        "name": source["name"],
        "description": source["description"],
        "transport": source["transport"],
        "url": source["url"],
        "headers": {k: MASK for k in source["header_keys"]},
        "status": source["status"],
        "error": source["status_error"],
        "tools": [
            {
                "name": t["name"],
                "description": t.get("description") or "",
                "input_schema": t.get("input_schema") or {},
                "execution": t.get("execution"),
                "imported": t["name"] in imported,
            }
            for t in source["discovered_tools"]
        ],
        "imported_count": source["imported_count"],
        "discovered_at": _iso(source["discovered_at"]),
        "imported_at": _iso(source["imported_at"]),
        "created_at": _iso(source["created_at"]),
        "updated_at": _iso(source["updated_at"]),
    }


async def imported_names(conn: asyncpg.Connection, server: Any, source_id: Any) -> set[str]:
    """Names of the server's tools imported from this source."""
    rows = await tools_store.list_for_servers(conn, [server["id"]])
    return {t["name"] for t in rows if t["source_id"] == source_id}


def missing(ref: str) -> NotFound:
    """The 404 of a source that does not exist or whose server the caller may not see.

    The server is not named."""
    return NotFound(f"Source {ref!r} not found.", details={"source": ref})


async def get_or_404(conn: asyncpg.Connection, ref: str) -> tuple[Any, Any]:
    """(source, server) by source id, or 404."""
    try:
        source_id = uuid.UUID(ref)
    except ValueError:
        source_id = None
    source = await sources_store.get_source(conn, source_id) if source_id else None
    if source is None:
        raise missing(ref)
    server = await servers_store.get_server_by_id(conn, source["server_id"])
    return source, server


async def _check_url(reg: Registry, conn: asyncpg.Connection, url: str) -> None:
    """422 when the URL breaks the SSRF rules."""
    try:
        ssrf.check_url(url, await reg.allowlist(conn))
    except ssrf.SsrfRefused as exc:
        raise Unprocessable(
            "The source URL is not allowed.", details={"fields": {"url": f"the URL {exc}"}}
        ) from None


async def _foreign(reg: Registry, conn: asyncpg.Connection, server: Any) -> list[str]:
    """Other servers' tool names, bare and as the gateway lists them."""
    cfg = await reg.config(conn)
    refs = await tools_store.foreign_tools(conn, server["id"])
    return review.foreign_names(refs, cfg["tool_name_separator"])


async def _store_headers(
    reg: Registry, conn: asyncpg.Connection, source: Any, headers: dict[str, str]
) -> None:
    """Seal the headers (MASK keeps a current value)."""
    current = headers_of(reg, source) if source["ciphertext"] is not None else {}
    merged = {k: (current.get(k, "") if v == MASK else v) for k, v in headers.items()}
    sealed = reg.box.seal(json.dumps(merged), aad(source["id"])) if merged else None
    await sources_store.set_headers(conn, source["id"], sorted(merged), sealed)


async def create(
    reg: Registry, conn: asyncpg.Connection, server: Any, body: SourceCreate, actor: str
) -> Any:
    """Add a source to a server (in the caller's transaction)."""
    await _check_url(reg, conn, body.url)
    source_id = uuid.uuid4()
    fields = {**body.model_dump(exclude={"headers"}), "created_by": actor}
    try:
        async with conn.transaction():
            await sources_store.insert_source(conn, source_id, server["id"], fields)
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"{server['name']!r} already has a source named {body.name!r}.",
            details={"name": body.name},
        ) from None
    source = await sources_store.get_source(conn, source_id)
    if body.headers:
        await _store_headers(reg, conn, source, body.headers)
    return await sources_store.get_source(conn, source_id)


async def update(
    reg: Registry,
    conn: asyncpg.Connection,
    server: Any,
    source: Any,
    body: SourceFields,
    *,
    keep_secrets: bool = True,
) -> Any:
    """Change the given fields of a source.

    Unless `keep_secrets` (the caller may carry them), a new url or transport drops the stored
    headers (docs/TENANCY.md)."""
    fields = body.model_dump(exclude_unset=True)
    moved = any(k in fields and fields[k] != source[k] for k in ("url", "transport"))
    if moved and not keep_secrets:
        kept = [k for k, v in (fields.get("headers") or {}).items() if v == MASK]
        if kept:
            raise Unprocessable(
                "Changing where the source connects drops its stored headers; give new values.",
                details={"fields": {f"headers.{k}": "a stored value cannot follow" for k in kept}},
            )
        fields["headers"] = fields.get("headers") or {}
    if fields.get("url") is not None:
        await _check_url(reg, conn, fields["url"])
    nulls = [k for k in ("name", "transport", "url") if k in fields and fields[k] is None]
    if nulls:
        raise Unprocessable(
            "The source is invalid.", details={"fields": dict.fromkeys(nulls, "may not be null")}
        )
    try:
        async with conn.transaction():
            await sources_store.update_source(conn, source["id"], fields)
    except asyncpg.UniqueViolationError:
        raise Conflict(
            f"{server['name']!r} already has a source named {fields.get('name')!r}.",
            details={"name": fields.get("name")},
        ) from None
    if "headers" in fields:
        await _store_headers(reg, conn, source, fields["headers"] or {})
    return await sources_store.get_source(conn, source["id"])


async def discover(reg: Registry, source: Any, actor: str | None) -> dict[str, Any]:
    """List the source's tools now; imported tools follow the rug-pull rules."""
    async with reg.pool.acquire() as conn:
        allow = await reg.allowlist(conn)
    timeout = reg.settings.discovery_timeout_s
    started = time.perf_counter()
    try:
        listing: discovery.Listing | None = await discovery.discover_remote(
            source["transport"],
            source["url"],
            headers_of(reg, source),
            timeout=timeout,
            allow=allow,
        )
        status, error = "healthy", None
    except discovery.DiscoveryFailed as exc:
        listing, status, error = None, "unhealthy", str(exc)
    metrics.observe_discovery("source", listing is not None, time.perf_counter() - started)
    changes: list[review.ToolChange] = []
    async with reg.pool.acquire() as conn, conn.transaction():
        await servers_store.lock_server(conn, source["server_id"])
        server = await servers_store.get_server_by_id(conn, source["server_id"])
        if server is None or await sources_store.get_source(conn, source["id"]) is None:
            raise NotFound("The source was deleted.", details={"source": str(source["id"])})
        await sources_store.record_discovery(
            conn, source["id"], status, error, listing.tools if listing else None
        )
        if listing is not None:
            stored = {
                t["name"]: dict(t)
                for t in await tools_store.list_for_servers(conn, [server["id"]])
                if t["source_id"] == source["id"]
            }
            changes = review.plan(
                stored,
                [t for t in listing.tools if t["name"] in stored],
                first_discovery=False,
                policy="quarantine",
                foreign_tools=await _foreign(reg, conn, server),
            )
            items = await refresh.apply_changes(conn, server, changes, source["id"])
            if changes:
                await servers.touch(reg, conn, server, ["tools"], actor, tools=items)
    return {
        "status": status,
        "error": error,
        "tool_count": len(listing.tools) if listing else None,
        "changes": [{"tool": c.name, "change": c.kind, "state": c.state} for c in changes],
    }


async def import_tools(
    reg: Registry,
    conn: asyncpg.Connection,
    server: Any,
    source: Any,
    names: list[str] | None,
    actor: str,
) -> list[dict[str, Any]]:
    """Import discovered tools into the server (all-or-nothing, in the caller's transaction)."""
    if source["discovered_at"] is None:
        raise Conflict(
            "Discover the source before importing its tools.",
            details={"source": str(source["id"]), "status": source["status"]},
        )
    listed = {t["name"]: t for t in source["discovered_tools"]}
    wanted = list(dict.fromkeys(names if names is not None else listed))
    unknown = [n for n in wanted if n not in listed]
    if unknown:
        raise Unprocessable(
            "Some tools are not offered by the source.",
            details={"fields": {"tools": f"not discovered: {', '.join(sorted(unknown))}"}},
        )
    existing = {t["name"]: t for t in await tools_store.list_for_servers(conn, [server["id"]])}
    taken = [n for n in wanted if n in existing and existing[n]["source_id"] != source["id"]]
    if taken:
        raise Conflict(
            "Some tools collide with tools the server already has.",
            details={"conflicts": sorted(taken)},
        )
    foreign = await _foreign(reg, conn, server)
    changes = []
    for name in wanted:
        tool = listed[name]
        flags = review.poisoning_flags(tool, foreign)
        state = "quarantined" if flags else "approved"
        changes.append(review.ToolChange(name, "discovered", tool, state, flags))
    items = await refresh.apply_changes(conn, server, changes, source["id"])
    await sources_store.mark_imported(conn, source["id"])
    await servers.touch(reg, conn, server, ["tools"], actor, tools=items)
    return [{"tool": c.name, "state": c.state, "flags": c.flags} for c in changes]
