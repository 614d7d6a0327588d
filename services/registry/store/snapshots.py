"""SQL for scans: version sources (in chunks), scan status, snapshots and control results."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

SNAPSHOT_COLUMNS = (
    "id, version_id, global_score, security_score, supply_chain_score, maturity_score, grade,"
    " scores, toolchain_version, scoring_version, controls_catalog_version, total_findings,"
    " critical_findings, high_findings, medium_findings, low_findings, tools, duration_ms,"
    " request_id, isolation, scanned_by, created_at"
)
CONTROL_COLUMNS = (
    "id, snapshot_id, control_id, control_name, control_category, passed, severity, message,"
    " findings, evidence"
)


async def source_chunk(
    conn: asyncpg.Connection, version_id: uuid.UUID, offset: int, length: int, digest: bool
) -> Any:
    """{size, data, sha256 (when `digest`)} of a byte range of the version's tarball, or None."""
    return await conn.fetchrow(
        "SELECT octet_length(tarball) AS size, substring(tarball FROM $2 + 1 FOR $3) AS data,"
        " CASE WHEN $4 THEN encode(sha256(tarball), 'hex') END AS sha256"
        " FROM registry.version_sources WHERE version_id = $1",
        version_id,
        offset,
        length,
        digest,
    )


async def lock_version(conn: asyncpg.Connection, version_id: uuid.UUID) -> Any:
    """The version's scan fields, locked for this transaction (None when it is gone)."""
    return await conn.fetchrow(
        "SELECT v.id, v.mcp_id, v.visible_version, v.status, v.status_error, m.license"
        " FROM registry.mcp_versions v JOIN registry.mcps m ON m.id = v.mcp_id"
        " WHERE v.id = $1 FOR UPDATE OF v",
        version_id,
    )


async def set_status(
    conn: asyncpg.Connection, version_id: uuid.UUID, status: str, error: str | None
) -> None:
    """Move the version to `status` (SCANNING stamps the start, the others the end)."""
    started = status == "SCANNING"
    await conn.execute(
        "UPDATE registry.mcp_versions SET status = $2, status_error = $3, updated_at = now(),"
        " scan_started_at = CASE WHEN $4 THEN now() ELSE scan_started_at END,"
        " scanned_at = CASE WHEN $4 THEN scanned_at ELSE now() END WHERE id = $1",
        version_id,
        status,
        error,
        started,
    )


async def snapshot_of_request(conn: asyncpg.Connection, request_id: str) -> Any:
    """The snapshot stored for a scan request, if any."""
    return await conn.fetchrow(
        f"SELECT {SNAPSHOT_COLUMNS} FROM registry.snapshots WHERE request_id = $1", request_id
    )


async def insert_snapshot(
    conn: asyncpg.Connection,
    version_id: uuid.UUID,
    report: dict[str, Any],
    tools: list[dict[str, Any]],
    duration_ms: int | None,
    request_id: str | None,
    isolation: str | None,
    scanned_by: str,
) -> Any:
    """Store a scan's snapshot (scores and counts from the report)."""
    scores = report["scores"]
    return await conn.fetchrow(
        "INSERT INTO registry.snapshots (id, version_id, global_score, security_score,"
        " supply_chain_score, maturity_score, grade, scores, toolchain_version, scoring_version,"
        " controls_catalog_version, total_findings, critical_findings, high_findings,"
        " medium_findings, low_findings, tools, duration_ms, request_id, isolation, scanned_by)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
        f" $18, $19, $20, $21) RETURNING {SNAPSHOT_COLUMNS}",
        uuid.uuid4(),
        version_id,
        report["global_score"],
        scores["security"]["score"],
        scores["supply_chain"]["score"],
        scores["maturity"]["score"],
        report["grade"],
        scores,
        report["toolchain_version"],
        report["scoring_version"],
        report["controls_catalog_version"],
        report["total_findings"],
        report["critical_findings"],
        report["high_findings"],
        report["medium_findings"],
        report["low_findings"],
        tools,
        duration_ms,
        request_id,
        isolation,
        scanned_by,
    )


async def insert_controls(
    conn: asyncpg.Connection, snapshot_id: uuid.UUID, controls: list[dict[str, Any]]
) -> None:
    """Store a snapshot's control results."""
    await conn.executemany(
        "INSERT INTO registry.control_results (id, snapshot_id, control_id, control_name,"
        " control_category, passed, severity, message, findings, evidence)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        [
            (
                uuid.uuid4(),
                snapshot_id,
                c["control_id"],
                c["control_name"],
                c["control_category"],
                bool(c["passed"]),
                c["severity"],
                str(c.get("message") or ""),
                int(c.get("findings") or 0),
                c.get("evidence") or [],
            )
            for c in controls
        ],
    )


async def fill_license(conn: asyncpg.Connection, mcp_id: uuid.UUID, license: str) -> None:
    """Set the MCP's license from a scan when it has none."""
    await conn.execute(
        "UPDATE registry.mcps SET license = $2, updated_at = now()"
        " WHERE id = $1 AND (license IS NULL OR license = '')",
        mcp_id,
        license,
    )


async def latest_snapshot(conn: asyncpg.Connection, version_id: uuid.UUID) -> Any:
    """The version's newest snapshot, or None."""
    return await conn.fetchrow(
        f"SELECT {SNAPSHOT_COLUMNS} FROM registry.snapshots WHERE version_id = $1"
        " ORDER BY created_at DESC, id DESC LIMIT 1",
        version_id,
    )


async def controls_of(conn: asyncpg.Connection, snapshot_id: uuid.UUID) -> list[Any]:
    """A snapshot's control results, by control id."""
    return await conn.fetch(
        f"SELECT {CONTROL_COLUMNS} FROM registry.control_results WHERE snapshot_id = $1"
        " ORDER BY control_id",
        snapshot_id,
    )
