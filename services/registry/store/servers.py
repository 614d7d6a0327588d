"""SQL for registry.servers.

One table's queries, with its shares and versions; a little over 300 lines, kept in one module
so every statement touching the table is in one place."""

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
    " s.created_at, s.updated_at, s.trusted, s.catalog_version_id,"
    " (SELECT count(*) FROM registry.tools t WHERE t.server_id = s.id)::int AS tool_count,"
    " ARRAY(SELECT sh.org FROM registry.server_shares sh WHERE sh.server_id = s.id"
    "  ORDER BY sh.org) AS shared_with"
)
# the rows a Visibility (services/registry/permissions.py) lets one read, {0}..{7} its lists
VISIBLE_SQL = (
    "({0}::bool OR s.org = ANY({1}::text[])"
    " OR EXISTS (SELECT 1 FROM registry.server_shares sh"
    "  WHERE sh.server_id = s.id AND sh.org = ANY({1}::text[]))"
    " OR EXISTS (SELECT 1 FROM unnest({2}::text[], {3}::text[]) AS m(org, team)"
    "  WHERE m.org = s.org AND m.team = s.owner_team)"
    " OR EXISTS (SELECT 1 FROM unnest({4}::text[], {5}::text[]) AS g(server, org)"
    "  WHERE g.server = s.id::text AND (g.org = s.org OR EXISTS (SELECT 1"
    "   FROM registry.server_shares sh WHERE sh.server_id = s.id AND sh.org = g.org))))"
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
    "catalog_version_id",
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


def visible_args(visible: Any, whole: bool = False) -> tuple[Any, ...]:
    """The values of VISIBLE_SQL's placeholders; `whole`: only grants not narrowed to tools."""
    servers, orgs = (
        (visible.whole_servers, visible.whole_orgs)
        if whole
        else (visible.grant_servers, visible.grant_orgs)
    )
    return (
        visible.everything,
        visible.orgs,
        visible.team_orgs,
        visible.team_names,
        servers,
        orgs,
    )


def _where(query: ListQuery, visible: Any) -> Where:
    """WHERE clause for a filtered list limited to what `visible` (a Visibility) lets one read."""
    w = Where()
    w.add(VISIBLE_SQL, *visible_args(visible))
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
    conn: asyncpg.Connection, query: ListQuery, visible: Any
) -> tuple[list[asyncpg.Record], int]:
    """A page of the servers `visible` (a permissions.Visibility) lets one read."""
    where = _where(query, visible)
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
    """Update the given columns, bump the version.

    The version is drawn by the UPDATE itself, under the row's lock: a server's versions rise
    in the order its changes commit, so a follower that applied version V has seen every change
    an event with a version up to V announces.
    """
    data = {k: v for k, v in fields.items() if k in WRITABLE}
    sets, values = assignments(data)
    await conn.execute(
        f"UPDATE registry.servers SET {sets}, version = nextval('registry.change_seq')"
        " WHERE id = $1",
        server_id,
        *values,
    )
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
        " RETURNING s.id, s.name, s.transport, s.url, s.timeout_s, s.status",
        limit,
        default_interval,
        jitter,
    )


async def list_shares(conn: asyncpg.Connection, server_id: uuid.UUID) -> list[asyncpg.Record]:
    """The orgs a server is shared with."""
    return await conn.fetch(
        "SELECT org, created_by, created_at FROM registry.server_shares WHERE server_id = $1"
        " ORDER BY org",
        server_id,
    )


async def insert_share(
    conn: asyncpg.Connection, server_id: uuid.UUID, org: str, actor: str | None
) -> bool:
    """Share a server with an org; False when it already was."""
    done = await conn.execute(
        "INSERT INTO registry.server_shares (server_id, org, created_by) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        server_id,
        org,
        actor,
    )
    return done != "INSERT 0 0"


async def delete_share(conn: asyncpg.Connection, server_id: uuid.UUID, org: str) -> bool:
    """Stop sharing a server with an org; False when it was not."""
    done = await conn.execute(
        "DELETE FROM registry.server_shares WHERE server_id = $1 AND org = $2", server_id, org
    )
    return done != "DELETE 0"


async def list_org_refs(conn: asyncpg.Connection) -> list[str]:
    """Org references that are not ids (slugs stored before orgs were kept by id)."""
    rows = await conn.fetch(
        "SELECT DISTINCT org FROM registry.servers WHERE org IS NOT NULL AND org !~"
        " '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"
    )
    return [r["org"] for r in rows]


async def list_by_org(conn: asyncpg.Connection, org: str) -> list[asyncpg.Record]:
    """The servers whose org column holds `org`."""
    return await conn.fetch(f"SELECT {COLUMNS} FROM registry.servers s WHERE s.org = $1", org)


async def count_by_status(conn: asyncpg.Connection) -> dict[str, int]:
    """How many servers are in each status."""
    rows = await conn.fetch("SELECT status, count(*)::int AS n FROM registry.servers GROUP BY 1")
    return {r["status"]: r["n"] for r in rows}


async def list_by_catalog_version(
    conn: asyncpg.Connection, version_id: uuid.UUID
) -> list[asyncpg.Record]:
    """The servers linked to a catalog version."""
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM registry.servers s WHERE s.catalog_version_id = $1 ORDER BY s.name",
        version_id,
    )


async def count_servers_and_tools(conn: asyncpg.Connection) -> tuple[int, int]:
    """How many servers and how many tools the platform holds."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM registry.servers)::int AS servers,"
        " (SELECT count(*) FROM registry.tools)::int AS tools"
    )
    return row["servers"], row["tools"]
