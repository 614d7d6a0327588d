"""Catalog rows written with SQL for tests of what reads them (reports, webhooks, plans)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg

CONTROLS = [
    # (id, name, category, passed, severity, message, findings)
    ("SEC-001", "No exposed secrets", "security", False, "critical", "1 secret in config.py", 1),
    ("SUP-002", "Lockfile present", "supply_chain", True, "medium", "poetry.lock found", 0),
    ("MAT-001", "README present", "maturity", True, "low", "README.md found", 0),
]


async def insert_mcp(
    conn: asyncpg.Connection,
    name: str,
    org: str | None,
    visibility: str = "private",
    repo_url: str | None = None,
) -> uuid.UUID:
    """A catalog entry."""
    mcp_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO registry.mcps (id, name, org, visibility, repo_url)"
        " VALUES ($1, $2, $3, $4, $5)",
        mcp_id,
        name,
        org,
        visibility,
        repo_url,
    )
    return mcp_id


async def insert_snapshot(
    conn: asyncpg.Connection,
    mcp_id: uuid.UUID,
    version: str = "commit-abc1234-20261201",
    grade: str = "C",
    created_at: datetime | None = None,
) -> uuid.UUID:
    """A version of the MCP with one snapshot and the CONTROLS' results."""
    version_id, snapshot_id = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO registry.mcp_versions (id, mcp_id, visible_version, source_kind, status)"
        " VALUES ($1, $2, $3, 'tarball', 'CERTIFIED')",
        version_id,
        mcp_id,
        version,
    )
    scores: dict[str, Any] = {"security": {"score": 40}, "supply_chain": {"score": 70}}
    await conn.execute(
        "INSERT INTO registry.snapshots (id, version_id, global_score, security_score,"
        " supply_chain_score, maturity_score, grade, scores, toolchain_version, scoring_version,"
        " controls_catalog_version, total_findings, critical_findings, low_findings, created_at)"
        " VALUES ($1, $2, 61, 40, 70, 80, $3, $4::jsonb, 'tc-1', 'sc-1', 'cc-1', 2, 1, 1,"
        " coalesce($5, now()))",
        snapshot_id,
        version_id,
        grade,
        json.dumps(scores),
        created_at,
    )
    for cid, name, category, passed, severity, message, findings in CONTROLS:
        await conn.execute(
            "INSERT INTO registry.control_results (id, snapshot_id, control_id, control_name,"
            " control_category, passed, severity, message, findings)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            uuid.uuid4(),
            snapshot_id,
            cid,
            name,
            category,
            passed,
            severity,
            message,
            findings,
        )
    return snapshot_id


async def clear_catalog(conn: asyncpg.Connection) -> None:
    """No catalog entries (their versions, snapshots and reports go with them), no deliveries."""
    await conn.execute("DELETE FROM registry.reports")
    await conn.execute("DELETE FROM registry.mcps")
    await conn.execute("DELETE FROM registry.webhook_deliveries")
