"""SQL for auth.signing_keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

COLUMNS = "kid, algorithm, private_key, encrypted, public_jwk, created_at, retired_at"
FIRST_KEY_LOCK = 0x5B0A_0A07  # advisory lock held while the first key is created


async def lock_first_key(conn: asyncpg.Connection) -> None:
    """Hold the first-key lock until the caller's transaction ends (one replica creates it)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", FIRST_KEY_LOCK)


async def get_active(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """The newest key that is not retired."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM auth.signing_keys WHERE retired_at IS NULL"
        " ORDER BY created_at DESC LIMIT 1"
    )


async def get(conn: asyncpg.Connection, kid: str) -> asyncpg.Record | None:
    """One key by kid."""
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM auth.signing_keys WHERE kid = $1", kid)


async def list_verifying(conn: asyncpg.Connection, since: datetime) -> list[asyncpg.Record]:
    """Keys that are active or were retired after `since` (their tokens may still be live)."""
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM auth.signing_keys WHERE retired_at IS NULL OR retired_at > $1"
        " ORDER BY created_at DESC",
        since,
    )


async def insert(
    conn: asyncpg.Connection, kid: str, private_key: bytes, encrypted: bool, jwk: dict[str, Any]
) -> None:
    """Store a new key."""
    await conn.execute(
        "INSERT INTO auth.signing_keys (kid, private_key, encrypted, public_jwk)"
        " VALUES ($1, $2, $3, $4)",
        kid,
        private_key,
        encrypted,
        jwk,
    )


async def retire_all_except(conn: asyncpg.Connection, kid: str) -> list[str]:
    """Retire every active key but `kid`; returns the retired kids."""
    rows = await conn.fetch(
        "UPDATE auth.signing_keys SET retired_at = now() WHERE retired_at IS NULL AND kid <> $1"
        " RETURNING kid",
        kid,
    )
    return [r["kid"] for r in rows]
