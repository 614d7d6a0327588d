"""SQL for sandbox.policy: the one security policy document."""

from __future__ import annotations

from typing import Any

import asyncpg

S = '"sandbox"'


async def get_policy(conn: asyncpg.Connection) -> dict[str, Any] | None:
    """The stored policy document."""
    return await conn.fetchval(f"SELECT doc FROM {S}.policy WHERE id")


async def put_policy(conn: asyncpg.Connection, doc: dict[str, Any], actor: str | None) -> None:
    """Store the policy document."""
    await conn.execute(
        f"INSERT INTO {S}.policy (id, doc, updated_by) VALUES (true, $1, $2)"
        " ON CONFLICT (id) DO UPDATE SET doc = $1, updated_by = $2, updated_at = now()",
        doc,
        actor,
    )
