"""SQL for sandbox.approvals: network, module and code tool requests and decisions."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

S = '"sandbox"'
APPROVAL_COLUMNS = (
    "id, kind, subject, server, version, status, reason, requested_by, decided_by, decided_at,"
    " details, created_at, updated_at"
)


async def insert_approval(
    conn: asyncpg.Connection,
    *,
    kind: str,
    subject: str,
    server: str | None = None,
    version: int | None = None,
    requested_by: str | None = None,
    details: dict[str, Any] | None = None,
) -> asyncpg.Record | None:
    """Open a pending approval; None when the same one is already pending."""
    return await conn.fetchrow(
        f"INSERT INTO {S}.approvals (id, kind, subject, server, version, status, requested_by,"
        " details) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)"
        f" ON CONFLICT DO NOTHING RETURNING {APPROVAL_COLUMNS}",
        uuid.uuid4(),
        kind,
        subject,
        server,
        version,
        requested_by,
        details or {},
    )


async def get_pending_network_approval(
    conn: asyncpg.Connection, server: str, host: str
) -> asyncpg.Record | None:
    """The open network request of a server for a host."""
    return await conn.fetchrow(
        f"SELECT {APPROVAL_COLUMNS} FROM {S}.approvals WHERE kind = 'network' AND server = $1"
        " AND subject = $2 AND status = 'pending'",
        server,
        host,
    )


async def revoke_network_approvals(
    conn: asyncpg.Connection, server: str, host: str, reason: str, actor: str | None
) -> list[asyncpg.Record]:
    """Mark a server's approved requests for a host revoked (the host left its allowlist)."""
    return await conn.fetch(
        f"UPDATE {S}.approvals SET status = 'revoked', reason = $3, decided_by = $4,"
        " decided_at = now(), updated_at = now() WHERE kind = 'network' AND server = $1"
        f" AND subject = $2 AND status = 'approved' RETURNING {APPROVAL_COLUMNS}",
        server,
        host,
        reason,
        actor,
    )


async def get_approval(conn: asyncpg.Connection, approval_id: uuid.UUID) -> asyncpg.Record | None:
    """One approval."""
    return await conn.fetchrow(
        f"SELECT {APPROVAL_COLUMNS} FROM {S}.approvals WHERE id = $1", approval_id
    )


async def list_approvals(
    conn: asyncpg.Connection,
    kind: str,
    status: str | None,
    order_sql: str,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    """A page of approvals of one kind, optionally by status."""
    where = "kind = $1 AND ($2::text IS NULL OR status = $2)"
    rows = await conn.fetch(
        f"SELECT {APPROVAL_COLUMNS} FROM {S}.approvals WHERE {where}"
        f" ORDER BY {order_sql} LIMIT $3 OFFSET $4",
        kind,
        status,
        limit,
        offset,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM {S}.approvals WHERE {where}", kind, status)
    return list(rows), total


async def approval_stats(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Counts by kind and status."""
    return await conn.fetch(
        f"SELECT kind, status, count(*) AS n FROM {S}.approvals GROUP BY kind, status"
    )


async def decide_approval(
    conn: asyncpg.Connection,
    approval_id: uuid.UUID,
    status: str,
    reason: str | None,
    actor: str | None,
) -> asyncpg.Record | None:
    """Set an approval's status (locked row)."""
    return await conn.fetchrow(
        f"UPDATE {S}.approvals SET status = $2, reason = $3, decided_by = $4, decided_at = now(),"
        f" updated_at = now() WHERE id = $1 RETURNING {APPROVAL_COLUMNS}",
        approval_id,
        status,
        reason,
        actor,
    )


async def supersede_tool_approvals(conn: asyncpg.Connection, tool_id: str) -> None:
    """Close a tool's pending approvals (a newer version replaces them)."""
    await conn.execute(
        f"UPDATE {S}.approvals SET status = 'rejected', reason = 'superseded by a newer version',"
        " updated_at = now() WHERE kind = 'tool' AND subject = $1 AND status = 'pending'",
        tool_id,
    )
