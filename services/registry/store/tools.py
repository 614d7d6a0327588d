"""SQL for registry.tools."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from libs.common.pagination import ListQuery
from libs.common.sql import Where, fetch_page
from services.registry.store.servers import VISIBLE_SQL, visible_args

COLUMNS = (
    "t.id, t.server_id, t.name, t.title, t.description, t.input_schema, t.output_schema,"
    " t.annotations, t.execution, t.fingerprint, t.state, t.approved, t.flags, t.approved_by,"
    " t.approved_at, t.created_at, t.updated_at, t.source_id"
)
SORTS = ("name", "created_at", "updated_at", "state")


async def list_for_servers(
    conn: asyncpg.Connection, server_ids: list[uuid.UUID]
) -> list[asyncpg.Record]:
    """Every tool of the given servers, by name."""
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM registry.tools t WHERE t.server_id = ANY($1) ORDER BY t.name",
        server_ids,
    )


async def get_tool(conn: asyncpg.Connection, server_id: uuid.UUID, name: str) -> asyncpg.Record:
    """One tool of a server, or None."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM registry.tools t WHERE t.server_id = $1 AND t.name = $2",
        server_id,
        name,
    )


async def foreign_tools(conn: asyncpg.Connection, server_id: uuid.UUID) -> list[tuple[str, str]]:
    """(server, tool) names of other servers' tools (for the cross-reference poisoning check)."""
    rows = await conn.fetch(
        "SELECT DISTINCT s.name AS server, t.name FROM registry.tools t"
        " JOIN registry.servers s ON s.id = t.server_id WHERE t.server_id <> $1",
        server_id,
    )
    return [(r["server"], r["name"]) for r in rows]


UPSERT_SQL = (
    "INSERT INTO registry.tools (id, server_id, name, title, description, input_schema,"
    " output_schema, annotations, fingerprint, state, flags, approved, approved_at, source_id,"
    " execution)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
    "  CASE WHEN $13 THEN now() END, $14, $15)"
    " ON CONFLICT (server_id, name) DO UPDATE SET title = EXCLUDED.title,"
    " description = EXCLUDED.description, input_schema = EXCLUDED.input_schema,"
    " output_schema = EXCLUDED.output_schema, annotations = EXCLUDED.annotations,"
    " execution = EXCLUDED.execution,"
    " fingerprint = EXCLUDED.fingerprint, state = EXCLUDED.state, flags = EXCLUDED.flags,"
    " approved = CASE WHEN $13 THEN EXCLUDED.approved ELSE registry.tools.approved END,"
    " approved_at = CASE WHEN $13 THEN now() ELSE registry.tools.approved_at END,"
    " updated_at = now()"
)


@dataclass(frozen=True)
class ToolWrite:
    """One tool definition to store: its state and flags.

    `approve` also records it as the approved version."""

    tool: dict[str, Any]
    fingerprint: str
    state: str
    flags: list[str]
    approve: bool


async def upsert_tools(
    conn: asyncpg.Connection,
    server_id: uuid.UUID,
    writes: list[ToolWrite],
    source_id: uuid.UUID | None = None,
) -> None:
    """Insert or replace tools' definitions, in one pipelined round of statements."""
    await conn.executemany(
        UPSERT_SQL,
        [
            (
                uuid.uuid4(),
                server_id,
                w.tool["name"],
                w.tool.get("title"),
                w.tool.get("description") or "",
                w.tool.get("input_schema") or {},
                w.tool.get("output_schema"),
                w.tool.get("annotations"),
                w.fingerprint,
                w.state,
                w.flags,
                w.tool if w.approve else None,
                w.approve,
                source_id,
                w.tool.get("execution"),
            )
            for w in writes
        ],
    )


async def delete_tools(conn: asyncpg.Connection, server_id: uuid.UUID, names: list[str]) -> None:
    """Remove tools the upstream no longer lists."""
    await conn.execute(
        "DELETE FROM registry.tools WHERE server_id = $1 AND name = ANY($2)", server_id, names
    )


async def quarantine(
    conn: asyncpg.Connection, server_id: uuid.UUID, held: list[tuple[str, list[str]]]
) -> None:
    """Put tools (by name, with their new flags) in quarantine: no longer routable."""
    if held:
        await conn.executemany(
            "UPDATE registry.tools SET state = 'quarantined', flags = $3, updated_at = now()"
            " WHERE server_id = $1 AND name = $2",
            [(server_id, name, flags) for name, flags in held],
        )


async def approve_tool(
    conn: asyncpg.Connection, server_id: uuid.UUID, name: str, by: str, definition: dict[str, Any]
) -> None:
    """Approve the current definition."""
    await conn.execute(
        "UPDATE registry.tools SET state = 'approved', approved = $3, approved_by = $4,"
        " approved_at = now(), updated_at = now() WHERE server_id = $1 AND name = $2",
        server_id,
        name,
        definition,
        by,
    )


async def search_tools(
    conn: asyncpg.Connection, query: ListQuery, visible: Any
) -> tuple[list[asyncpg.Record], int]:
    """A page of the tools `visible` (a ToolVisibility) lets one read, with server info."""
    w = Where()
    # whole servers as the server list sees them (grants not narrowed to tools), else single
    # tools of narrowed grants, each held by the owning org or one the server is shared with
    w.add(
        f"({VISIBLE_SQL} OR EXISTS (SELECT 1 FROM unnest({{6}}::text[], {{7}}::text[],"
        " {8}::text[]) AS n(server, org, tool) WHERE n.server = s.id::text AND n.tool = t.name"
        " AND (n.org = s.org OR EXISTS (SELECT 1 FROM registry.server_shares sh"
        "  WHERE sh.server_id = s.id AND sh.org = n.org))))",
        *visible_args(visible, whole=True),
        visible.tool_servers,
        visible.tool_orgs,
        visible.tool_names,
    )
    w.search(("t.name", "t.description"), query.q)
    if "server" in query.filters:
        w.add("s.name = {}", query.filters["server"])
    if "state" in query.filters:
        w.add("t.state = {}", query.filters["state"])
    columns = f"{COLUMNS}, s.name AS server, s.enabled AS server_enabled, s.disabled_tools"
    source = "registry.tools t JOIN registry.servers s ON s.id = t.server_id"
    return await fetch_page(conn, columns, source, w, query, f"t.{query.order_sql}, s.name")


async def count_quarantined(conn: asyncpg.Connection) -> int:
    """How many tools are quarantined."""
    return await conn.fetchval("SELECT count(*) FROM registry.tools WHERE state = 'quarantined'")
