"""SQL for registry.sources (external MCP sources of a server)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from libs.common.sql import assignments
from services.registry.crypto import Sealed

COLUMNS = (
    "c.id, c.server_id, c.name, c.description, c.transport, c.url, c.header_keys, c.nonce,"
    " c.ciphertext, c.key_id, c.status, c.status_error, c.discovered_tools, c.discovered_at,"
    " c.imported_at, c.created_by, c.created_at, c.updated_at,"
    " (SELECT count(*) FROM registry.tools t WHERE t.source_id = c.id)::int AS imported_count"
)


async def insert_source(
    conn: asyncpg.Connection, source_id: uuid.UUID, server_id: uuid.UUID, fields: dict[str, Any]
) -> None:
    """Insert a source; a taken name raises asyncpg.UniqueViolationError."""
    await conn.execute(
        "INSERT INTO registry.sources (id, server_id, name, description, transport, url,"
        " created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        source_id,
        server_id,
        fields["name"],
        fields.get("description") or "",
        fields["transport"],
        fields["url"],
        fields.get("created_by"),
    )


async def get_source(conn: asyncpg.Connection, source_id: uuid.UUID) -> asyncpg.Record | None:
    """One source, or None."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM registry.sources c WHERE c.id = $1", source_id
    )


async def list_sources(conn: asyncpg.Connection, server_id: uuid.UUID) -> list[asyncpg.Record]:
    """A server's sources by name."""
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM registry.sources c WHERE c.server_id = $1 ORDER BY c.name",
        server_id,
    )


async def list_for_servers(
    conn: asyncpg.Connection, server_ids: list[uuid.UUID]
) -> list[asyncpg.Record]:
    """Every source of the given servers."""
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM registry.sources c WHERE c.server_id = ANY($1)", server_ids
    )


async def update_source(
    conn: asyncpg.Connection, source_id: uuid.UUID, fields: dict[str, Any]
) -> None:
    """Update the given columns (name, description, transport, url)."""
    data = {k: v for k, v in fields.items() if k in ("name", "description", "transport", "url")}
    if not data:
        return
    sets, values = assignments(data)
    await conn.execute(f"UPDATE registry.sources SET {sets} WHERE id = $1", source_id, *values)


async def set_headers(
    conn: asyncpg.Connection, source_id: uuid.UUID, keys: list[str], sealed: Sealed | None
) -> None:
    """Store the sealed headers (None clears them)."""
    await conn.execute(
        "UPDATE registry.sources SET header_keys = $2, nonce = $3, ciphertext = $4, key_id = $5,"
        " updated_at = now() WHERE id = $1",
        source_id,
        keys,
        sealed.nonce if sealed else None,
        sealed.ciphertext if sealed else None,
        sealed.key_id if sealed else None,
    )


async def record_discovery(
    conn: asyncpg.Connection,
    source_id: uuid.UUID,
    status: str,
    error: str | None,
    tools: list[dict[str, Any]] | None,
) -> None:
    """Store a discovery's outcome (the listing only when it succeeded)."""
    await conn.execute(
        "UPDATE registry.sources SET status = $2, status_error = $3,"
        " discovered_tools = COALESCE($4, discovered_tools),"
        " discovered_at = CASE WHEN $4::jsonb IS NULL THEN discovered_at ELSE now() END"
        " WHERE id = $1",
        source_id,
        status,
        error,
        tools,
    )


async def mark_imported(conn: asyncpg.Connection, source_id: uuid.UUID) -> None:
    """Record an import."""
    await conn.execute("UPDATE registry.sources SET imported_at = now() WHERE id = $1", source_id)


async def delete_source(conn: asyncpg.Connection, source_id: uuid.UUID) -> None:
    """Delete a source (its imported tools go with it)."""
    await conn.execute("DELETE FROM registry.sources WHERE id = $1", source_id)


async def list_not_under(conn: asyncpg.Connection, key_id: str) -> list[asyncpg.Record]:
    """Sources whose headers are sealed under another key than `key_id`, locked."""
    return await conn.fetch(
        "SELECT id, nonce, ciphertext, key_id FROM registry.sources"
        " WHERE ciphertext IS NOT NULL AND key_id <> $1 FOR UPDATE",
        key_id,
    )


async def reseal_headers(conn: asyncpg.Connection, source_id: uuid.UUID, sealed: Sealed) -> None:
    """Replace the headers' ciphertext (same plaintext, new key)."""
    await conn.execute(
        "UPDATE registry.sources SET nonce = $2, ciphertext = $3, key_id = $4 WHERE id = $1",
        source_id,
        sealed.nonce,
        sealed.ciphertext,
        sealed.key_id,
    )
