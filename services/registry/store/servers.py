"""SQL for registry.servers."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from libs.common.pagination import ListQuery
from libs.common.sql import Where, assignments, fetch_page

COLUMNS = (
    "s.id, s.name, s.path, s.display_name, s.description, s.transport, s.url, s.command, s.args,"
    " s.cwd, s.tags, s.enabled, s.org, s.owner_team, s.timeout_s, s.max_concurrency, s.per_user,"
    " s.health_interval_s, s.disabled_tools, s.metadata, s.resources, s.prompts, s.status,"
    " s.status_error, s.last_checked_at, s.latency_ms, s.discovered_at, s.version, s.created_by,"
    " s.created_at, s.updated_at, s.trusted,"
    " (SELECT count(*) FROM registry.tools t WHERE t.server_id = s.id)::int AS tool_count"
)
WRITABLE = {
    "name",
    "path",
    "display_name",
    "description",
    "transport",
    "url",
    "command",
    "args",
    "cwd",
    "tags",
    "enabled",
    "org",
    "owner_team",
    "timeout_s",
    "max_concurrency",
    "per_user",
    "health_interval_s",
    "disabled_tools",
    "metadata",
    "created_by",
    "trusted",
}
SORTS = ("created_at", "updated_at", "name", "status", "transport")
FILTERS = ("status", "team", "tag", "transport", "enabled", "org")


async def next_version(conn: asyncpg.Connection) -> int:
    """A new change number (every write takes one)."""
    return await conn.fetchval("SELECT nextval('registry.change_seq')")


async def current_version(conn: asyncpg.Connection) -> int:
    """The latest change number handed out."""
    row = await conn.fetchrow("SELECT last_value, is_called FROM registry.change_seq")
    return int(row["last_value"]) if row["is_called"] else 0


async def insert_server(conn: asyncpg.Connection, fields: dict[str, Any]) -> asyncpg.Record:
    """Insert a server; unique violations surface as asyncpg.UniqueViolationError."""
    data = {k: v for k, v in fields.items() if k in WRITABLE}
    data["id"] = uuid.uuid4()
    data["version"] = await next_version(conn)
    cols = list(data)
    marks = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    await conn.execute(
        f"INSERT INTO registry.servers ({', '.join(cols)}) VALUES ({marks})", *data.values()
    )
    return await get_server_by_id(conn, data["id"])


async def get_server(conn: asyncpg.Connection, ref: str) -> asyncpg.Record | None:
    """A server by name, path or id."""
    try:
        by_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        by_id = None
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM registry.servers s WHERE s.name = $1 OR s.id = $2"
        " ORDER BY (s.name = $1) DESC LIMIT 1",
        ref,
        by_id,
    ) or await conn.fetchrow(f"SELECT {COLUMNS} FROM registry.servers s WHERE s.path = $1", ref)


async def get_server_by_id(conn: asyncpg.Connection, server_id: uuid.UUID) -> asyncpg.Record:
    """A server by id (it must exist)."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM registry.servers s WHERE s.id = $1", server_id
    )


async def lock_server(conn: asyncpg.Connection, server_id: uuid.UUID) -> None:
    """Serialise writers of one server for the rest of the transaction."""
    await conn.execute("SELECT 1 FROM registry.servers WHERE id = $1 FOR UPDATE", server_id)


def _where(
    query: ListQuery, names: list[str] | None, orgs: list[str] | None, teams: list[str]
) -> Where:
    """WHERE clause for a filtered, visibility-limited list (owner teams see their servers)."""
    w = Where()
    w.add(
        "({0}::text[] IS NULL OR s.name = ANY({0}) OR s.org = ANY({1}) OR s.owner_team = ANY({2}))",
        names,
        orgs,
        teams,
    )
    f = query.filters
    simple = {
        "status": "s.status",
        "transport": "s.transport",
        "team": "s.owner_team",
        "org": "s.org",
    }
    for key, column in simple.items():
        if key in f:
            w.add(f"{column} = {{}}", f[key])
    if "tag" in f:
        w.add("{} = ANY(s.tags)", f["tag"])
    if "enabled" in f:
        w.add("s.enabled = {}", f["enabled"].lower() in ("true", "1", "yes"))
    w.search(("s.name", "s.description", "s.display_name", "array_to_string(s.tags, ' ')"), query.q)
    return w


async def list_servers(
    conn: asyncpg.Connection,
    query: ListQuery,
    names: list[str] | None,
    orgs: list[str] | None,
    teams: list[str] | None = None,
) -> tuple[list[asyncpg.Record], int]:
    """A page of servers visible through `names` (None: all), `orgs` or owner `teams`."""
    where = _where(query, names, orgs, list(teams or []))
    order = f"s.{query.order_sql}, s.name"
    return await fetch_page(conn, COLUMNS, "registry.servers s", where, query, order)


async def list_all(
    conn: asyncpg.Connection, names: list[str] | None = None
) -> list[asyncpg.Record]:
    """Every server (or those named), by name."""
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM registry.servers s WHERE ($1::text[] IS NULL OR s.name = ANY($1))"
        " ORDER BY s.name",
        names,
    )


async def list_page(
    conn: asyncpg.Connection, names: list[str] | None, offset: int, limit: int
) -> list[asyncpg.Record]:
    """Servers by name for the snapshot, paged."""
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM registry.servers s WHERE ($1::text[] IS NULL OR s.name = ANY($1))"
        " ORDER BY s.name OFFSET $2 LIMIT $3",
        names,
        offset,
        limit,
    )


async def update_server(
    conn: asyncpg.Connection, server_id: uuid.UUID, fields: dict[str, Any]
) -> asyncpg.Record:
    """Update the given columns, bump the version."""
    data = {k: v for k, v in fields.items() if k in WRITABLE}
    data["version"] = await next_version(conn)
    sets, values = assignments(data)
    await conn.execute(f"UPDATE registry.servers SET {sets} WHERE id = $1", server_id, *values)
    return await get_server_by_id(conn, server_id)


async def delete_server(conn: asyncpg.Connection, server_id: uuid.UUID) -> None:
    """Delete a server (its tools and secrets go with it)."""
    await conn.execute("DELETE FROM registry.servers WHERE id = $1", server_id)


async def record_discovery(
    conn: asyncpg.Connection,
    server_id: uuid.UUID,
    *,
    status: str,
    error: str | None,
    latency_ms: float | None,
    resources: list[Any] | None,
    prompts: list[Any] | None,
    bump: bool,
) -> int:
    """Store a check's outcome (and listing); returns the server's version."""
    return await conn.fetchval(
        "UPDATE registry.servers SET status = $2, status_error = $3, latency_ms = $4,"
        " last_checked_at = now(), resources = COALESCE($5, resources),"
        " prompts = COALESCE($6, prompts),"
        " discovered_at = CASE WHEN $5::jsonb IS NULL THEN discovered_at"
        "   ELSE COALESCE(discovered_at, now()) END,"
        " version = CASE WHEN $7 THEN nextval('registry.change_seq') ELSE version END"
        " WHERE id = $1 RETURNING version",
        server_id,
        status,
        error,
        latency_ms,
        resources,
        prompts,
        bump,
    )


async def claim_due(
    conn: asyncpg.Connection, limit: int, default_interval: float, jitter: float
) -> list[asyncpg.Record]:
    """Claim enabled servers whose check is due, pushing their next check out (replica-safe)."""
    return await conn.fetch(
        "UPDATE registry.servers s SET next_check_at = now() + make_interval(secs =>"
        " COALESCE(s.health_interval_s, $2) * (1 + $3 * (random() * 2 - 1)))"
        " WHERE s.id IN (SELECT id FROM registry.servers WHERE enabled"
        "   AND (next_check_at IS NULL OR next_check_at <= now())"
        "   ORDER BY next_check_at NULLS FIRST LIMIT $1 FOR UPDATE SKIP LOCKED)"
        " RETURNING s.id, s.name",
        limit,
        default_interval,
        jitter,
    )
