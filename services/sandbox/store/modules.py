"""SQL for sandbox.modules: the module allowlist of code tools."""

from __future__ import annotations

import asyncpg

S = '"sandbox"'


async def list_modules(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The module allowlist."""
    return await conn.fetch(
        f"SELECT name, version, status, install_error, added_by, created_at, updated_at"
        f" FROM {S}.modules ORDER BY name"
    )


async def insert_module(
    conn: asyncpg.Connection, name: str, actor: str | None, version: str | None = None
) -> None:
    """Allow a module (idempotent)."""
    await conn.execute(
        f"INSERT INTO {S}.modules (name, version, added_by) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET version = coalesce($2, modules.version),"
        " updated_at = now()",
        name,
        version,
        actor,
    )


async def delete_module(conn: asyncpg.Connection, name: str) -> bool:
    """Remove a module from the allowlist."""
    return bool(
        await conn.fetchval(f"DELETE FROM {S}.modules WHERE name = $1 RETURNING true", name)
    )


async def set_module_install(
    conn: asyncpg.Connection, name: str, status: str, version: str | None, error: str | None
) -> asyncpg.Record | None:
    """Record the outcome of an install."""
    return await conn.fetchrow(
        f"UPDATE {S}.modules SET status = $2, version = coalesce($3, version),"
        " install_error = $4, updated_at = now() WHERE name = $1"
        " RETURNING name, version, status, install_error, added_by, created_at, updated_at",
        name,
        status,
        version,
        error,
    )
