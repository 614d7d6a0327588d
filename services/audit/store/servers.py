"""SQL for the projection of server statuses and the settings learnt from the registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg


async def upsert_server_status(
    conn: asyncpg.Connection, server: str, status: str, org: str | None, at: datetime
) -> None:
    """Record a server's status; `since` moves only when the status changes."""
    await conn.execute(
        "INSERT INTO audit.server_status AS s (server, status, org, since, updated_at)"
        " VALUES ($1, $2, $3, $4, $4) ON CONFLICT (server) DO UPDATE SET"
        " since = CASE WHEN s.status = EXCLUDED.status THEN s.since ELSE EXCLUDED.since END,"
        " status = EXCLUDED.status, org = coalesce(EXCLUDED.org, s.org),"
        " updated_at = EXCLUDED.updated_at WHERE s.updated_at <= EXCLUDED.updated_at",
        server,
        status,
        org,
        at,
    )


async def delete_server(conn: asyncpg.Connection, server: str) -> None:
    """Forget a deleted server."""
    await conn.execute("DELETE FROM audit.server_status WHERE server = $1", server)
    await conn.execute("DELETE FROM audit.servers WHERE server = $1", server)


async def upsert_owner(
    conn: asyncpg.Connection,
    server: str,
    server_id: str | None,
    org: str | None,
    shared_with: list[str] | None,
    at: datetime,
) -> None:
    """Record whose a server is (its org, and the orgs it is shared with when given)."""
    await conn.execute(
        "INSERT INTO audit.servers AS s (server, server_id, org, shared_with, updated_at)"
        " VALUES ($1, $2, $3, coalesce($4, '{}'::text[]), $5) ON CONFLICT (server) DO UPDATE SET"
        " server_id = coalesce(EXCLUDED.server_id, s.server_id), org = EXCLUDED.org,"
        " shared_with = coalesce($4, s.shared_with), updated_at = EXCLUDED.updated_at"
        " WHERE s.updated_at <= EXCLUDED.updated_at",
        server,
        server_id,
        org,
        shared_with,
        at,
    )


async def list_owners(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every known server with its id, org and shares."""
    return await conn.fetch(
        "SELECT server, server_id, org, owner_team, shared_with FROM audit.servers"
    )


async def get_owner(conn: asyncpg.Connection, server: str) -> asyncpg.Record | None:
    """One server's id, org and shares."""
    return await conn.fetchrow(
        "SELECT server, server_id, org, owner_team, shared_with FROM audit.servers"
        " WHERE server = $1",
        server,
    )


async def list_server_status(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every known server with its status and since when."""
    return await conn.fetch(
        "SELECT server, status, org, since, updated_at, now() AS now FROM audit.server_status"
        " ORDER BY server"
    )


async def get_setting(conn: asyncpg.Connection, key: str) -> Any:
    """A stored setting's value, or None."""
    return await conn.fetchval("SELECT value FROM audit.settings WHERE key = $1", key)


async def put_setting(conn: asyncpg.Connection, key: str, value: Any) -> None:
    """Store a setting."""
    await conn.execute(
        "INSERT INTO audit.settings (key, value, updated_at) VALUES ($1, $2, now())"
        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        key,
        value,
    )
