"""SQL for registry.secrets (encrypted header and env values)."""

from __future__ import annotations

import uuid

import asyncpg

from services.registry.crypto import Sealed


async def upsert_secret(
    conn: asyncpg.Connection, server_id: uuid.UUID, kind: str, key: str, sealed: Sealed
) -> bool:
    """Set a value; True when the key is new."""
    return await conn.fetchval(
        "INSERT INTO registry.secrets (server_id, kind, key, nonce, ciphertext, key_id)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (server_id, kind, key) DO UPDATE"
        " SET nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, key_id = EXCLUDED.key_id,"
        " updated_at = now() RETURNING (xmax = 0)",
        server_id,
        kind,
        key,
        sealed.nonce,
        sealed.ciphertext,
        sealed.key_id,
    )


async def list_secrets(
    conn: asyncpg.Connection, server_ids: list[uuid.UUID]
) -> list[asyncpg.Record]:
    """Every secret of the servers, with ciphertext (decrypt only where values must travel)."""
    return await conn.fetch(
        "SELECT server_id, kind, key, nonce, ciphertext, key_id, created_at, updated_at"
        " FROM registry.secrets WHERE server_id = ANY($1) ORDER BY kind, key",
        server_ids,
    )


async def delete_secret(
    conn: asyncpg.Connection, server_id: uuid.UUID, kind: str | None, key: str
) -> int:
    """Delete a key (of one kind, or any kind); returns how many rows went."""
    result = await conn.execute(
        "DELETE FROM registry.secrets WHERE server_id = $1 AND key = $3"
        " AND ($2::text IS NULL OR kind = $2)",
        server_id,
        kind,
        key,
    )
    return int(result.split()[-1])


async def delete_kind(conn: asyncpg.Connection, server_id: uuid.UUID, kind: str) -> None:
    """Delete every secret of one kind (a full replacement of headers or env follows)."""
    await conn.execute(
        "DELETE FROM registry.secrets WHERE server_id = $1 AND kind = $2", server_id, kind
    )


async def list_not_under(conn: asyncpg.Connection, key_id: str) -> list[asyncpg.Record]:
    """Secrets sealed under another key than `key_id`, locked for re-encryption."""
    return await conn.fetch(
        "SELECT server_id, kind, key, nonce, ciphertext, key_id FROM registry.secrets"
        " WHERE key_id <> $1 FOR UPDATE",
        key_id,
    )


async def reseal_secret(
    conn: asyncpg.Connection, server_id: uuid.UUID, kind: str, key: str, sealed: Sealed
) -> None:
    """Replace a value's ciphertext (same plaintext, new key)."""
    await conn.execute(
        "UPDATE registry.secrets SET nonce = $4, ciphertext = $5, key_id = $6"
        " WHERE server_id = $1 AND kind = $2 AND key = $3",
        server_id,
        kind,
        key,
        sealed.nonce,
        sealed.ciphertext,
        sealed.key_id,
    )
