"""SQL for sandbox.processes: each replica's last reported process states."""

from __future__ import annotations

from typing import Any

import asyncpg

S = '"sandbox"'


async def upsert_process(conn: asyncpg.Connection, snap: dict[str, Any], instance: str) -> None:
    """Record a process's last reported state."""
    await conn.execute(
        f"INSERT INTO {S}.processes (key, server, state, pid, restarts, exit_code, reason,"
        " instance) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (key) DO UPDATE SET state = $3, pid = $4, restarts = $5, exit_code = $6,"
        " reason = $7, instance = $8, updated_at = now()",
        snap["key"],
        snap["server"],
        snap["state"],
        snap.get("pid"),
        snap.get("restarts") or 0,
        snap.get("exit_code"),
        snap.get("reason"),
        instance,
    )


async def list_processes(conn: asyncpg.Connection, server: str) -> list[asyncpg.Record]:
    """Stored states of a server's processes (any replica)."""
    return await conn.fetch(
        f"SELECT key, server, state, pid, restarts, exit_code, reason, instance, updated_at"
        f" FROM {S}.processes WHERE server = $1 ORDER BY key",
        server,
    )


async def count_processes(conn: asyncpg.Connection) -> dict[str, int]:
    """Processes by state."""
    rows = await conn.fetch(f"SELECT state, count(*) AS n FROM {S}.processes GROUP BY state")
    return {r["state"]: r["n"] for r in rows}


async def delete_processes_of(conn: asyncpg.Connection, instance: str) -> None:
    """Forget every process row a replica stored (it is shutting down)."""
    await conn.execute(f"DELETE FROM {S}.processes WHERE instance = $1", instance)


async def delete_orphan_processes(conn: asyncpg.Connection, stale_s: float) -> list[asyncpg.Record]:
    """Delete the rows of replicas that died; return them.

    A live process's row is orphaned once its replica holds no live lease on the key. A stopped
    or failed process has no lease (it was released) but its replica still serves its logs: that
    row goes only when its replica has not touched it for `stale_s` (see
    `touch_ended_processes`)."""
    return await conn.fetch(
        f"DELETE FROM {S}.processes p WHERE NOT EXISTS (SELECT 1 FROM {S}.owners o"
        " WHERE o.key = p.key AND o.instance = p.instance AND o.expires_at > now())"
        " AND (p.state NOT IN ('stopped', 'failed')"
        "      OR p.updated_at < now() - make_interval(secs => $1))"
        " RETURNING key, server, state, pid, restarts, exit_code, instance",
        stale_s,
    )


async def touch_ended_processes(conn: asyncpg.Connection, instance: str) -> None:
    """Mark a live replica's stopped and failed process rows as still served."""
    await conn.execute(
        f"UPDATE {S}.processes SET updated_at = now()"
        " WHERE instance = $1 AND state IN ('stopped', 'failed')",
        instance,
    )
