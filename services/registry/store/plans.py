"""SQL for what plans count: an org's private MCPs and its scans this calendar month."""

from __future__ import annotations

import asyncpg


async def count_private_mcps(conn: asyncpg.Connection, org: str) -> int:
    """The org's private catalog entries."""
    return await conn.fetchval(
        "SELECT count(*) FROM registry.mcps WHERE org = $1 AND visibility = 'private'", org
    )


async def count_scans_this_month(conn: asyncpg.Connection, org: str) -> int:
    """Scans (snapshots) of the org's MCPs' versions since the first of this month (UTC)."""
    return await conn.fetchval(
        "SELECT count(*) FROM registry.snapshots s"
        " JOIN registry.mcp_versions v ON v.id = s.version_id"
        " JOIN registry.mcps m ON m.id = v.mcp_id"
        " WHERE m.org = $1"
        " AND s.created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        org,
    )
