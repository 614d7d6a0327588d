"""A server's catalog version: linking it, its certification in views, tools held to the snapshot.

A server registered from the catalog names the version it runs (`servers.catalog_version_id`);
its view and its snapshot entry carry that version's latest scan, which the gateway's policies
judge, and a discovered tool that the certified snapshot does not describe is quarantined."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg
import structlog

from libs.common import events as ev
from libs.common.errors import Unprocessable
from libs.common.policy import Certification
from services.registry import review, summaries
from services.registry.context import SCHEMA, Registry
from services.registry.schemas import CatalogRef
from services.registry.store import policies as policies_store
from services.registry.store import servers as servers_store
from services.registry.store import tools as tools_store

log = structlog.get_logger()
MISMATCH = "certification_mismatch"


def certification_of(row: Mapping[str, Any]) -> Certification:
    """The evaluator's form of a version's certification row (store CERTIFICATION_SQL)."""
    return Certification(
        mcp_id=str(row["mcp_id"]),
        mcp=row["mcp"],
        version_id=str(row["version_id"]),
        visible_version=row["visible_version"],
        global_score=row["global_score"],
        grade=row["grade"],
        license=row["license"],
        failed_controls=list(row["failed_controls"] or []),
    )


def version_id(value: str) -> uuid.UUID | None:
    """A version id as given, or None when it is not a uuid."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def link(
    conn: asyncpg.Connection, org: str | None, value: str | CatalogRef | None
) -> uuid.UUID | None:
    """The version id a server's `catalog_version` names, readable by the server's org; else 422.

    None unlinks."""
    if value is None:
        return None
    if isinstance(value, CatalogRef):
        row = await policies_store.find_version(conn, org, value.mcp, value.version)
    else:
        vid = version_id(value)
        row = await policies_store.readable_version(conn, org, vid) if vid else None
    if row is None:
        raise Unprocessable(
            "The catalog version is not known.",
            details={"fields": {"catalog_version": "no such catalog version"}},
        )
    return row["version_id"]


async def of_servers(
    conn: asyncpg.Connection, rows: Iterable[Mapping[str, Any]]
) -> dict[Any, Certification]:
    """The certification of each linked server, by server id (one query)."""
    linked = {r["id"]: r["catalog_version_id"] for r in rows if r.get("catalog_version_id")}
    if not linked:
        return {}
    found = {
        row["version_id"]: certification_of(row)
        for row in await policies_store.certifications(conn, list(set(linked.values())))
    }
    return {sid: found[vid] for sid, vid in linked.items() if vid in found}


def out(cert: Certification | None) -> dict[str, Any] | None:
    """A certification as JSON (None: the server is not from the catalog)."""
    return dataclasses.asdict(cert) if cert is not None else None


async def announce(reg: Registry, conn: asyncpg.Connection, version_id: uuid.UUID) -> int:
    """A version's certification changed (a new snapshot): bump its servers, SERVER_UPDATED.

    Each linked server's approved tools are held to the new snapshot (hold_stored). In the
    caller's transaction; returns how many servers were linked."""
    rows = await servers_store.list_by_catalog_version(conn, version_id)
    for row in rows:
        items = await hold_stored(conn, row)
        updated = await servers_store.update_server(conn, row["id"], {})
        payload = ev.ServerChanged(
            updated["name"], str(updated["id"]), updated["version"], ["certification"]
        )
        for part in summaries.with_tools(payload, items):
            await reg.emit(
                conn, ev.SERVER_UPDATED.event(part, source=SCHEMA, actor=None, org=updated["org"])
            )
    return len(rows)


async def hold_stored(conn: asyncpg.Connection, server: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Quarantine the server's approved tools its certified snapshot does not vouch for.

    For a server just linked to a version, or whose version got a new snapshot: tools already
    stored are held as a refresh holds changed ones. Returns their summary items
    (summaries.tool_item) for the caller's SERVER_UPDATED."""
    certified = await snapshot_tools(conn, server["catalog_version_id"])
    if not certified:
        return []
    held: list[tuple[review.ToolChange, str]] = []
    for row in await tools_store.list_for_servers(conn, [server["id"]]):
        tool = dict(row)
        if tool["source_id"] is not None or tool["state"] != "approved":
            continue
        if mismatched(tool, certified):
            flags = sorted({*(tool["flags"] or []), MISMATCH})
            held.append(
                (review.ToolChange(tool["name"], "quarantined", tool, "quarantined", flags),
                 tool["fingerprint"])
            )  # fmt: skip
    await tools_store.quarantine(conn, server["id"], [(c.name, c.flags) for c, _ in held])
    for change, _ in held:
        log.warning("tool_quarantined", server=server["name"], tool=change.name, reason=MISMATCH)
    return [summaries.tool_item(change, fp, False) for change, fp in held]


async def snapshot_tools(
    conn: asyncpg.Connection, version_id: uuid.UUID | None
) -> list[dict[str, Any]] | None:
    """The tools the version's latest snapshot lists (None: no snapshot, or it lists none)."""
    if version_id is None:
        return None
    tools = await policies_store.snapshot_tools(conn, version_id)
    return tools or None


def mismatched(tool: Mapping[str, Any], certified: list[dict[str, Any]]) -> bool:
    """True when the snapshot does not list the tool, or lists another definition of it.

    The snapshot's fingerprint (review.fingerprint) is compared when it has one, else the
    SHA-256 of the description."""
    entry = next((t for t in certified if t.get("name") == tool.get("name")), None)
    if entry is None:
        return True
    if entry.get("fingerprint"):
        return entry["fingerprint"] != review.fingerprint(tool)
    digest = hashlib.sha256((tool.get("description") or "").encode()).hexdigest()
    return entry.get("description_sha256") != digest


def hold_to_snapshot(
    changes: list[review.ToolChange], certified: list[dict[str, Any]] | None
) -> None:
    """Quarantine (flag `certification_mismatch`) the changed tools the snapshot does not vouch for.

    A tool restored to the definition an admin approved stays approved: their approval
    overrides."""
    if not certified:
        return
    for change in changes:
        if change.kind in ("removed", "restored") or not mismatched(change.tool, certified):
            continue
        change.state = "quarantined"
        if MISMATCH not in change.flags:
            change.flags.append(MISMATCH)
