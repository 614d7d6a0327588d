"""SQL for registry.reports and what a report shows (snapshot, version, MCP, control results)."""

from __future__ import annotations

import uuid

import asyncpg

from libs.common.pagination import ListQuery
from libs.common.sql import Where, fetch_page

COLUMNS = (
    "id, org, snapshot_id, format, status, error, created_by, created_at, completed_at,"
    " content IS NOT NULL AS has_content"
)
SORTS = ("created_at", "completed_at", "status")
FILTERS = ("status", "snapshot_id")


async def readable_snapshot(
    conn: asyncpg.Connection, snapshot_id: uuid.UUID, org: str | None
) -> asyncpg.Record | None:
    """A snapshot of a public MCP or of one of `org`'s (any when org is None: platform admin)."""
    return await conn.fetchrow(
        "SELECT s.id FROM registry.snapshots s"
        " JOIN registry.mcp_versions v ON v.id = s.version_id"
        " JOIN registry.mcps m ON m.id = v.mcp_id"
        " WHERE s.id = $1 AND ($2::text IS NULL OR m.visibility = 'public' OR m.org = $2)",
        snapshot_id,
        org,
    )


async def insert_report(
    conn: asyncpg.Connection, org: str, snapshot_id: uuid.UUID, fmt: str, actor: str
) -> asyncpg.Record:
    """A PENDING report."""
    return await conn.fetchrow(
        "INSERT INTO registry.reports (id, org, snapshot_id, format, created_by)"
        f" VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}",
        uuid.uuid4(),
        org,
        snapshot_id,
        fmt,
        actor,
    )


async def get_report(
    conn: asyncpg.Connection, org: str, report_id: uuid.UUID
) -> asyncpg.Record | None:
    """One report of the org (without its bytes)."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM registry.reports WHERE org = $1 AND id = $2", org, report_id
    )


async def get_content(conn: asyncpg.Connection, org: str, report_id: uuid.UUID) -> bytes | None:
    """The rendered bytes of one report of the org."""
    return await conn.fetchval(
        "SELECT content FROM registry.reports WHERE org = $1 AND id = $2", org, report_id
    )


async def list_reports(
    conn: asyncpg.Connection, org: str, query: ListQuery
) -> tuple[list[asyncpg.Record], int]:
    """A page of the org's reports."""
    w = Where()
    w.add("org = {}", org)
    if "status" in query.filters:
        w.add("status = {}", query.filters["status"].upper())
    if "snapshot_id" in query.filters:
        w.add("snapshot_id::text = {}", query.filters["snapshot_id"])
    return await fetch_page(conn, COLUMNS, "registry.reports", w, query, f"{query.order_sql}, id")


async def list_pending_ids(conn: asyncpg.Connection) -> list[uuid.UUID]:
    """Every PENDING report, oldest first."""
    rows = await conn.fetch(
        "SELECT id FROM registry.reports WHERE status = 'PENDING' ORDER BY created_at, id"
    )
    return [r["id"] for r in rows]


async def claim_pending(conn: asyncpg.Connection, report_id: uuid.UUID) -> asyncpg.Record | None:
    """Lock a PENDING report for the caller's transaction; None when done or held elsewhere."""
    return await conn.fetchrow(
        "SELECT id, snapshot_id, format FROM registry.reports"
        " WHERE id = $1 AND status = 'PENDING' FOR UPDATE SKIP LOCKED",
        report_id,
    )


async def complete_report(conn: asyncpg.Connection, report_id: uuid.UUID, content: bytes) -> None:
    """COMPLETED with its bytes."""
    await conn.execute(
        "UPDATE registry.reports SET status = 'COMPLETED', content = $2, error = NULL,"
        " completed_at = now() WHERE id = $1",
        report_id,
        content,
    )


async def fail_report(conn: asyncpg.Connection, report_id: uuid.UUID, error: str) -> None:
    """FAILED with the reason."""
    await conn.execute(
        "UPDATE registry.reports SET status = 'FAILED', error = $2, completed_at = now()"
        " WHERE id = $1",
        report_id,
        error,
    )


async def snapshot_details(conn: asyncpg.Connection, snapshot_id: uuid.UUID) -> asyncpg.Record:
    """The snapshot with its version's and MCP's names (None when it is gone)."""
    return await conn.fetchrow(
        "SELECT s.id, s.global_score, s.security_score, s.supply_chain_score, s.maturity_score,"
        " s.grade, s.total_findings, s.critical_findings, s.high_findings, s.medium_findings,"
        " s.low_findings, s.toolchain_version, s.scoring_version, s.controls_catalog_version,"
        " s.created_at, v.visible_version, v.commit_sha, m.name AS mcp_name, m.title AS mcp_title"
        " FROM registry.snapshots s JOIN registry.mcp_versions v ON v.id = s.version_id"
        " JOIN registry.mcps m ON m.id = v.mcp_id WHERE s.id = $1",
        snapshot_id,
    )


async def list_control_results(
    conn: asyncpg.Connection, snapshot_id: uuid.UUID
) -> list[asyncpg.Record]:
    """A snapshot's control results, failed first, then by control id."""
    return await conn.fetch(
        "SELECT control_id, control_name, control_category, passed, severity, message, findings"
        " FROM registry.control_results WHERE snapshot_id = $1 ORDER BY passed, control_id",
        snapshot_id,
    )


async def get_report_by_id(conn: asyncpg.Connection, report_id: uuid.UUID) -> asyncpg.Record:
    """One report by id, whatever its org (for the generator)."""
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM registry.reports WHERE id = $1", report_id)
