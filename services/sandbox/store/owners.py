"""SQL for sandbox.owners: which replica runs each server key (leases)."""

from __future__ import annotations

import asyncpg

S = '"sandbox"'


async def get_owner_for_update(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    """A key's lease, locked, with whether it is still live."""
    return await conn.fetchrow(
        f"SELECT key, server, instance, expires_at > now() AS live FROM {S}.owners"
        " WHERE key = $1 FOR UPDATE",
        key,
    )


async def insert_owner(
    conn: asyncpg.Connection, key: str, server: str, instance: str, ttl_s: float
) -> bool:
    """Take a free key's lease; False when another replica inserted it first."""
    done = await conn.fetchval(
        f"INSERT INTO {S}.owners (key, server, instance, expires_at)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4))"
        " ON CONFLICT (key) DO NOTHING RETURNING true",
        key,
        server,
        instance,
        ttl_s,
    )
    return bool(done)


async def update_owner(conn: asyncpg.Connection, key: str, instance: str, ttl_s: float) -> None:
    """Give a key's lease to `instance` for `ttl_s` from now."""
    await conn.execute(
        f"UPDATE {S}.owners SET instance = $2, expires_at = now() + make_interval(secs => $3),"
        " updated_at = now() WHERE key = $1",
        key,
        instance,
        ttl_s,
    )


async def refresh_owners(
    conn: asyncpg.Connection, instance: str, keys: list[str], ttl_s: float
) -> list[str]:
    """Extend the live leases a replica still holds; returns the keys it still owns."""
    rows = await conn.fetch(
        f"UPDATE {S}.owners SET expires_at = now() + make_interval(secs => $3), updated_at = now()"
        " WHERE instance = $1 AND key = ANY($2::text[]) AND expires_at > now() RETURNING key",
        instance,
        keys,
        ttl_s,
    )
    return [r["key"] for r in rows]


async def expire_owner(conn: asyncpg.Connection, key: str, instance: str) -> None:
    """End a lease now (its holder no longer answers)."""
    await conn.execute(
        f"UPDATE {S}.owners SET expires_at = now(), updated_at = now()"
        " WHERE key = $1 AND instance = $2",
        key,
        instance,
    )


async def delete_owners(conn: asyncpg.Connection, instance: str, keys: list[str]) -> None:
    """Release some of a replica's leases (their processes stopped)."""
    await conn.execute(
        f"DELETE FROM {S}.owners WHERE instance = $1 AND key = ANY($2::text[])", instance, keys
    )


async def delete_owners_of(conn: asyncpg.Connection, instance: str) -> None:
    """Release every lease of a replica (it is shutting down)."""
    await conn.execute(f"DELETE FROM {S}.owners WHERE instance = $1", instance)


async def list_process_instances(conn: asyncpg.Connection, server: str) -> list[str]:
    """The replicas that stored a state of one of the server's processes."""
    rows = await conn.fetch(
        f"SELECT DISTINCT instance FROM {S}.processes WHERE server = $1", server
    )
    return [r["instance"] for r in rows]


async def list_live_owners(conn: asyncpg.Connection, server: str) -> list[asyncpg.Record]:
    """Live leases on a server's keys (the server itself and its per-user keys)."""
    return await conn.fetch(
        f"SELECT key, instance FROM {S}.owners WHERE server = $1 AND expires_at > now()"
        " ORDER BY key",
        server,
    )
