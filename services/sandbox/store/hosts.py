"""SQL for sandbox.allowed_hosts: each server's egress allowlist."""

from __future__ import annotations

import asyncpg

S = '"sandbox"'


async def list_allowed_hosts(conn: asyncpg.Connection, server: str) -> list[str]:
    """The egress allowlist of a server."""
    rows = await conn.fetch(
        f"SELECT host FROM {S}.allowed_hosts WHERE server = $1 ORDER BY host", server
    )
    return [r["host"] for r in rows]


async def insert_allowed_host(
    conn: asyncpg.Connection, server: str, host: str, actor: str | None
) -> bool:
    """Allow a host; False when it was allowed already."""
    done = await conn.fetchval(
        f"INSERT INTO {S}.allowed_hosts (server, host, created_by) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        server,
        host,
        actor,
    )
    return bool(done)


async def delete_allowed_host(conn: asyncpg.Connection, server: str, host: str) -> bool:
    """Remove a host; False when it was not there."""
    done = await conn.fetchval(
        f"DELETE FROM {S}.allowed_hosts WHERE server = $1 AND host = $2 RETURNING true",
        server,
        host,
    )
    return bool(done)
