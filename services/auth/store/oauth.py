"""SQL for OAuth clients, authorization codes and the sessions (grants) they open."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson

CLIENT_COLUMNS = "id, name, redirect_uris, grant_types, scope, metadata, created_at"


async def insert_client(
    conn: asyncpg.Connection,
    client_id: str,
    name: str,
    redirect_uris: list[str],
    grant_types: list[str],
    scope: str,
    metadata: dict[str, Any],
    source: str,
) -> asyncpg.Record:
    """Register a public client."""
    return await conn.fetchrow(
        "INSERT INTO auth.oauth_clients (id, name, redirect_uris, grant_types, scope, metadata,"
        f" source) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) RETURNING {CLIENT_COLUMNS}",
        client_id,
        name,
        redirect_uris,
        grant_types,
        scope,
        orjson.dumps(metadata).decode(),
        source,
    )


async def recent_clients(
    conn: asyncpg.Connection, source: str, window_s: float
) -> tuple[int, float]:
    """How many clients `source` registered within the window, and when the oldest leaves it.

    The second figure is the seconds until the oldest of them leaves the window; registrations
    from one source are serialised until commit."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('oauth-register:' || $1))", source)
    row = await conn.fetchrow(
        "SELECT count(*) AS n, extract(epoch FROM min(created_at)"
        " + make_interval(secs => $2) - now()) AS left_s"
        " FROM auth.oauth_clients WHERE source = $1"
        " AND created_at > now() - make_interval(secs => $2)",
        source,
        window_s,
    )
    return int(row["n"]), float(row["left_s"] or 0)


async def get_client(conn: asyncpg.Connection, client_id: str) -> asyncpg.Record | None:
    """A registered client by id."""
    return await conn.fetchrow(
        f"SELECT {CLIENT_COLUMNS} FROM auth.oauth_clients WHERE id = $1", client_id
    )


async def insert_code(
    conn: asyncpg.Connection,
    code_hash: str,
    client_id: str,
    user_id: uuid.UUID,
    redirect_uri: str,
    code_challenge: str,
    resource: str,
    scope: str,
    ttl_s: int,
) -> None:
    """Store an authorization code's hash (single use, short-lived)."""
    await conn.execute(
        "INSERT INTO auth.oauth_codes (code_hash, client_id, user_id, redirect_uri,"
        " code_challenge, resource, scope, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))",
        code_hash,
        client_id,
        user_id,
        redirect_uri,
        code_challenge,
        resource,
        scope,
        float(ttl_s),
    )


async def lock_code(conn: asyncpg.Connection, code_hash: str) -> asyncpg.Record | None:
    """A code with its state, locked for the exchange (caller checks use and expiry)."""
    return await conn.fetchrow(
        "SELECT code_hash, client_id, user_id, redirect_uri, code_challenge, resource, scope,"
        " used_at, session_id, expires_at > now() AS live FROM auth.oauth_codes"
        " WHERE code_hash = $1 FOR UPDATE",
        code_hash,
    )


async def mark_code_used(
    conn: asyncpg.Connection, code_hash: str, session_id: uuid.UUID | None
) -> None:
    """A code may be exchanged once; remember the session it opened (to end it on reuse)."""
    await conn.execute(
        "UPDATE auth.oauth_codes SET used_at = now(), session_id = $2 WHERE code_hash = $1",
        code_hash,
        session_id,
    )


async def delete_expired_codes(conn: asyncpg.Connection) -> None:
    """Forget codes that expired a day ago (reuse detection needs them only briefly)."""
    await conn.execute("DELETE FROM auth.oauth_codes WHERE expires_at < now() - interval '1 day'")


async def insert_session(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    client_id: str,
    resource: str,
    scope: str,
    ttl_s: int,
    source: str,
) -> uuid.UUID:
    """Open an OAuth session: one grant to one client for one resource."""
    return await conn.fetchval(
        "INSERT INTO auth.sessions (id, user_id, kind, source, expires_at, oauth_client_id,"
        " resource, scope) VALUES ($1, $2, 'oauth', $3, now() + make_interval(secs => $4),"
        " $5, $6, $7) RETURNING id",
        uuid.uuid4(),
        user_id,
        source,
        float(ttl_s),
        client_id,
        resource,
        scope,
    )


async def get_session(conn: asyncpg.Connection, session_id: uuid.UUID) -> asyncpg.Record | None:
    """An OAuth session by id."""
    return await conn.fetchrow(
        "SELECT id, user_id, oauth_client_id, resource, scope, revoked_at FROM auth.sessions"
        " WHERE id = $1 AND kind = 'oauth'",
        session_id,
    )
