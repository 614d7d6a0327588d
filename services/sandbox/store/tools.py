"""SQL for sandbox.code_tools and their versions."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

S = '"sandbox"'
TOOL_COLUMNS = (
    "id, name, description, code, input_schema, version, approved_version, status, created_by,"
    " created_at, updated_at, server"
)


async def insert_tool(
    conn: asyncpg.Connection, body: dict[str, Any], actor: str | None
) -> asyncpg.Record:
    """Create a tool at version 1 (and its first version row)."""
    row = await conn.fetchrow(
        f"INSERT INTO {S}.code_tools (id, name, description, code, input_schema, version,"
        f" status, created_by, server) VALUES ($1, $2, $3, $4, $5, 1, 'pending', $6, $7)"
        f" RETURNING {TOOL_COLUMNS}",
        uuid.uuid4(),
        body["name"],
        body.get("description") or "",
        body["code"],
        body["input_schema"],
        actor,
        body.get("server") or "code",
    )
    await insert_version(conn, row, actor, "created")
    return row


async def insert_version(
    conn: asyncpg.Connection, tool: asyncpg.Record, actor: str | None, note: str | None
) -> None:
    """Store the tool's current content as its version row."""
    await conn.execute(
        f"INSERT INTO {S}.code_tool_versions (tool_id, version, description, code, input_schema,"
        " created_by, note) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        tool["id"],
        tool["version"],
        tool["description"],
        tool["code"],
        tool["input_schema"],
        actor,
        note,
    )


async def get_tool(
    conn: asyncpg.Connection, ref: str, *, lock: bool = False
) -> asyncpg.Record | None:
    """A tool by id or name."""
    suffix = " FOR UPDATE" if lock else ""
    try:
        tool_id = uuid.UUID(ref)
    except ValueError:
        return await conn.fetchrow(
            f"SELECT {TOOL_COLUMNS} FROM {S}.code_tools WHERE name = $1{suffix}", ref
        )
    return await conn.fetchrow(
        f"SELECT {TOOL_COLUMNS} FROM {S}.code_tools WHERE id = $1{suffix}", tool_id
    )


async def list_tools(
    conn: asyncpg.Connection,
    q: str | None,
    status: str | None,
    order_sql: str,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    """A page of tools."""
    where = (
        "($1::text IS NULL OR name ILIKE '%' || $1 || '%' OR description ILIKE '%' || $1 || '%')"
        " AND ($2::text IS NULL OR status = $2)"
    )
    rows = await conn.fetch(
        f"SELECT {TOOL_COLUMNS} FROM {S}.code_tools WHERE {where} ORDER BY {order_sql}"
        " LIMIT $3 OFFSET $4",
        q,
        status,
        limit,
        offset,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM {S}.code_tools WHERE {where}", q, status)
    return list(rows), total


async def update_tool(
    conn: asyncpg.Connection, tool_id: uuid.UUID, fields: dict[str, Any]
) -> asyncpg.Record:
    """Save new content as the next version; approval is needed again."""
    return await conn.fetchrow(
        f"UPDATE {S}.code_tools SET description = $2, code = $3, input_schema = $4,"
        " version = version + 1, status = 'pending', updated_at = now() WHERE id = $1"
        f" RETURNING {TOOL_COLUMNS}",
        tool_id,
        fields["description"],
        fields["code"],
        fields["input_schema"],
    )


async def set_tool_status(
    conn: asyncpg.Connection, tool_id: uuid.UUID, status: str, approved_version: int | None
) -> asyncpg.Record:
    """Set a tool's status and approved version."""
    return await conn.fetchrow(
        f"UPDATE {S}.code_tools SET status = $2, approved_version = $3, updated_at = now()"
        f" WHERE id = $1 RETURNING {TOOL_COLUMNS}",
        tool_id,
        status,
        approved_version,
    )


async def delete_tool(conn: asyncpg.Connection, tool_id: uuid.UUID) -> None:
    """Delete a tool and its versions."""
    await conn.execute(f"DELETE FROM {S}.code_tools WHERE id = $1", tool_id)


async def list_versions(conn: asyncpg.Connection, tool_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every version of a tool, newest first."""
    return await conn.fetch(
        f"SELECT version, description, code, input_schema, created_by, note, created_at"
        f" FROM {S}.code_tool_versions WHERE tool_id = $1 ORDER BY version DESC",
        tool_id,
    )


async def get_version(
    conn: asyncpg.Connection, tool_id: uuid.UUID, version: int
) -> asyncpg.Record | None:
    """One version of a tool."""
    return await conn.fetchrow(
        f"SELECT version, description, code, input_schema, created_by, note, created_at"
        f" FROM {S}.code_tool_versions WHERE tool_id = $1 AND version = $2",
        tool_id,
        version,
    )


async def approved_tools(conn: asyncpg.Connection, server: str = "code") -> list[asyncpg.Record]:
    """Approved tools of one code server with the content of their approved version."""
    return await conn.fetch(
        f"SELECT t.id, t.name, v.description, v.code, v.input_schema, t.approved_version"
        f" FROM {S}.code_tools t JOIN {S}.code_tool_versions v"
        "   ON v.tool_id = t.id AND v.version = t.approved_version"
        " WHERE t.approved_version IS NOT NULL AND t.server = $1 ORDER BY t.name",
        server,
    )


async def hosts_code_server(conn: asyncpg.Connection, server: str) -> bool:
    """Whether `server` is a code server: the built-in one, or one a code tool was put under."""
    return server == "code" or await conn.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM {S}.code_tools WHERE server = $1)", server
    )


async def approved_content(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every approved tool at its approved version, with its server (for exports)."""
    return await conn.fetch(
        f"SELECT t.name, t.server, v.description, v.code, v.input_schema"
        f" FROM {S}.code_tools t JOIN {S}.code_tool_versions v"
        "   ON v.tool_id = t.id AND v.version = t.approved_version"
        " WHERE t.approved_version IS NOT NULL ORDER BY t.server, t.name"
    )
