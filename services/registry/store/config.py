"""SQL for the admin config (table registry.settings, its name since the first migration)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.registry.crypto import Sealed


async def list_entries(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every stored config entry (secret ones with ciphertext)."""
    return await conn.fetch(
        "SELECT key, value, nonce, ciphertext, key_id, updated_by, updated_at"
        " FROM registry.settings ORDER BY key"
    )


async def put_entry(
    conn: asyncpg.Connection, key: str, value: Any, sealed: Sealed | None, by: str | None
) -> None:
    """Store a value (plain in `value`, or sealed)."""
    await conn.execute(
        "INSERT INTO registry.settings (key, value, nonce, ciphertext, key_id, updated_by)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,"
        " nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, key_id = EXCLUDED.key_id,"
        " updated_by = EXCLUDED.updated_by, updated_at = now()",
        key,
        None if sealed else value,
        sealed.nonce if sealed else None,
        sealed.ciphertext if sealed else None,
        sealed.key_id if sealed else None,
        by,
    )


async def list_not_under(conn: asyncpg.Connection, key_id: str) -> list[asyncpg.Record]:
    """Secret config entries sealed under another key than `key_id`, locked for re-encryption."""
    return await conn.fetch(
        "SELECT key, nonce, ciphertext, key_id FROM registry.settings"
        " WHERE ciphertext IS NOT NULL AND key_id <> $1 FOR UPDATE",
        key_id,
    )


async def reseal_entry(conn: asyncpg.Connection, key: str, sealed: Sealed) -> None:
    """Replace a secret entry's ciphertext (same plaintext, new key)."""
    await conn.execute(
        "UPDATE registry.settings SET nonce = $2, ciphertext = $3, key_id = $4 WHERE key = $1",
        key,
        sealed.nonce,
        sealed.ciphertext,
        sealed.key_id,
    )
