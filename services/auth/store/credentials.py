"""SQL for API keys, service tokens, admin tokens, sessions and refresh tokens.

Just over 300 lines on purpose: the SQL of one table family (auth.credentials and the sessions
and refresh tokens that point at it), which change together.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

KEY_COLUMNS = "id, user_id, name, prefix, teams, expires_at, last_used_at, revoked_at, created_at"
TOKEN_COLUMNS = (
    "id, org_id, name, description, prefix, scopes, created_by, expires_at, last_used_at,"
    " revoked_at, created_at, grants"
)
SESSION_COLUMNS = "id, user_id, kind, source, expires_at, revoked_at, revoked_reason, created_at"


# ---- API keys ------------------------------------------------------------------------------


async def insert_key(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    name: str,
    prefix: str,
    key_hash: str,
    teams: list[str] | None,
    expires_at: datetime | None,
) -> asyncpg.Record:
    """Store a new API key's hash."""
    return await conn.fetchrow(
        "INSERT INTO auth.api_keys (id, user_id, name, prefix, key_hash, teams, expires_at)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}",
        uuid.uuid4(),
        user_id,
        name,
        prefix,
        key_hash,
        teams,
        expires_at,
    )


async def list_keys(conn: asyncpg.Connection, user_id: uuid.UUID) -> list[asyncpg.Record]:
    """A user's API keys that are not revoked."""
    return await conn.fetch(
        f"SELECT {KEY_COLUMNS} FROM auth.api_keys WHERE user_id = $1 AND revoked_at IS NULL"
        " ORDER BY created_at DESC",
        user_id,
    )


async def revoke_key(
    conn: asyncpg.Connection, key_id: uuid.UUID, user_id: uuid.UUID | None
) -> asyncpg.Record | None:
    """Revoke a key (of `user_id` unless None); None when there is no such live key."""
    return await conn.fetchrow(
        "UPDATE auth.api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL"
        f" AND ($2::uuid IS NULL OR user_id = $2) RETURNING {KEY_COLUMNS}",
        key_id,
        user_id,
    )


async def key_by_hash(conn: asyncpg.Connection, key_hash: str) -> asyncpg.Record | None:
    """A live key by hash, marking it used."""
    return await conn.fetchrow(
        "UPDATE auth.api_keys SET last_used_at = now() WHERE key_hash = $1 AND revoked_at IS NULL"
        f" AND (expires_at IS NULL OR expires_at > now()) RETURNING {KEY_COLUMNS}",
        key_hash,
    )


# ---- service tokens ------------------------------------------------------------------------


async def insert_token(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    name: str,
    description: str,
    prefix: str,
    token_hash: str,
    scopes: list[str],
    created_by: uuid.UUID | None,
    expires_at: datetime | None,
    grants: list[dict[str, Any]] | None = None,
) -> asyncpg.Record:
    """Store a new service token's hash (with its server grants, if any)."""
    return await conn.fetchrow(
        "INSERT INTO auth.service_tokens (id, org_id, name, description, prefix, token_hash,"
        " scopes, created_by, expires_at, grants)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)"
        f" RETURNING {TOKEN_COLUMNS}",
        uuid.uuid4(),
        org_id,
        name,
        description,
        prefix,
        token_hash,
        scopes,
        created_by,
        expires_at,
        orjson.dumps(grants).decode() if grants is not None else None,
    )


async def list_tokens(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[asyncpg.Record]:
    """An org's live service tokens."""
    return await conn.fetch(
        f"SELECT {TOKEN_COLUMNS} FROM auth.service_tokens WHERE org_id = $1"
        " AND revoked_at IS NULL ORDER BY created_at DESC",
        org_id,
    )


async def revoke_token(
    conn: asyncpg.Connection, org_id: uuid.UUID, token_id: uuid.UUID
) -> asyncpg.Record | None:
    """Revoke an org's token; None when there is no such live token."""
    return await conn.fetchrow(
        "UPDATE auth.service_tokens SET revoked_at = now() WHERE id = $1 AND org_id = $2"
        f" AND revoked_at IS NULL RETURNING {TOKEN_COLUMNS}",
        token_id,
        org_id,
    )


async def token_by_hash(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """A live service token by hash (its org active), marking it used."""
    return await conn.fetchrow(
        "UPDATE auth.service_tokens t SET last_used_at = now() FROM auth.orgs o"
        " WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND o.id = t.org_id"
        " AND o.status = 'active' AND (t.expires_at IS NULL OR t.expires_at > now())"
        " RETURNING t.id, t.org_id, t.name, t.scopes, t.grants, o.slug AS org_slug",
        token_hash,
    )


# ---- admin tokens --------------------------------------------------------------------------


async def replace_admin_token(
    conn: asyncpg.Connection, prefix: str, token_hash: str, created_by: uuid.UUID | None
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Revoke every admin token and store the new one; returns (new id, revoked ids)."""
    revoked = await conn.fetch(
        "UPDATE auth.admin_tokens SET revoked_at = now() WHERE revoked_at IS NULL RETURNING id"
    )
    new_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO auth.admin_tokens (id, prefix, token_hash, created_by) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (token_hash) DO UPDATE SET revoked_at = NULL",
        new_id,
        prefix,
        token_hash,
        created_by,
    )
    return new_id, [r["id"] for r in revoked]


async def admin_token_by_hash(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """The live admin token with this hash."""
    return await conn.fetchrow(
        "UPDATE auth.admin_tokens SET last_used_at = now() WHERE token_hash = $1"
        " AND revoked_at IS NULL RETURNING id, prefix",
        token_hash,
    )


async def admin_token_exists(conn: asyncpg.Connection, token_hash: str) -> bool:
    """True when this hash is a live admin token."""
    return bool(
        await conn.fetchval(
            "SELECT true FROM auth.admin_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
            token_hash,
        )
    )


# ---- sessions and refresh tokens -----------------------------------------------------------


async def insert_session(
    conn: asyncpg.Connection,
    user_id: uuid.UUID,
    kind: str,
    ttl_s: int,
    source: str,
    token_hash: str | None = None,
) -> uuid.UUID:
    """Open a session (the JWT sid, the refresh family, or a browser cookie)."""
    return await conn.fetchval(
        "INSERT INTO auth.sessions (id, user_id, kind, token_hash, source, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) RETURNING id",
        uuid.uuid4(),
        user_id,
        kind,
        token_hash,
        source,
        float(ttl_s),
    )


async def live_session(conn: asyncpg.Connection, session_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """True when the session is the user's, not revoked and not expired."""
    return bool(
        await conn.fetchval(
            "SELECT true FROM auth.sessions WHERE id = $1 AND user_id = $2"
            " AND revoked_at IS NULL AND expires_at > now()",
            session_id,
            user_id,
        )
    )


async def session_by_hash(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """A live browser session by its cookie hash."""
    return await conn.fetchrow(
        f"SELECT {SESSION_COLUMNS} FROM auth.sessions WHERE token_hash = $1"
        " AND revoked_at IS NULL AND expires_at > now()",
        token_hash,
    )


async def revoke_session(
    conn: asyncpg.Connection, session_id: uuid.UUID, reason: str
) -> asyncpg.Record | None:
    """Revoke a live session; None when it was not live."""
    return await conn.fetchrow(
        "UPDATE auth.sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1"
        f" AND revoked_at IS NULL RETURNING {SESSION_COLUMNS}",
        session_id,
        reason,
    )


async def revoke_user_sessions(
    conn: asyncpg.Connection, user_id: uuid.UUID, reason: str, keep: uuid.UUID | None = None
) -> list[asyncpg.Record]:
    """Revoke every live session of a user except `keep`."""
    return await conn.fetch(
        "UPDATE auth.sessions SET revoked_at = now(), revoked_reason = $2 WHERE user_id = $1"
        " AND revoked_at IS NULL AND ($3::uuid IS NULL OR id <> $3)"
        f" RETURNING {SESSION_COLUMNS}",
        user_id,
        reason,
        keep,
    )


async def insert_refresh(
    conn: asyncpg.Connection, session_id: uuid.UUID, token_hash: str, ttl_s: int
) -> None:
    """Store a refresh token of the session's family."""
    await conn.execute(
        "INSERT INTO auth.refresh_tokens (id, session_id, token_hash, expires_at)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
        uuid.uuid4(),
        session_id,
        token_hash,
        float(ttl_s),
    )


async def use_refresh(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """Lock a refresh token with its session state (caller checks reuse and expiry)."""
    return await conn.fetchrow(
        "SELECT r.id, r.session_id, r.used_at, r.expires_at > now() AS live, s.user_id,"
        " s.revoked_at AS session_revoked_at, s.kind, s.oauth_client_id, s.resource, s.scope"
        " FROM auth.refresh_tokens r"
        " JOIN auth.sessions s ON s.id = r.session_id WHERE r.token_hash = $1 FOR UPDATE OF r",
        token_hash,
    )


async def mark_refresh_used(conn: asyncpg.Connection, refresh_id: uuid.UUID) -> None:
    """A refresh token may be used once."""
    await conn.execute("UPDATE auth.refresh_tokens SET used_at = now() WHERE id = $1", refresh_id)


async def session_of_refresh(conn: asyncpg.Connection, token_hash: str) -> asyncpg.Record | None:
    """The session a refresh token belongs to."""
    return await conn.fetchrow(
        f"SELECT {', '.join('s.' + c.strip() for c in SESSION_COLUMNS.split(','))}"
        " FROM auth.refresh_tokens r JOIN auth.sessions s ON s.id = r.session_id"
        " WHERE r.token_hash = $1",
        token_hash,
    )


async def list_tokens_in(
    conn: asyncpg.Connection, org_ids: list[uuid.UUID] | None
) -> list[asyncpg.Record]:
    """Live service tokens of the listed orgs (None: every org)."""
    return await conn.fetch(
        f"SELECT {TOKEN_COLUMNS} FROM auth.service_tokens WHERE revoked_at IS NULL"
        " AND ($1::uuid[] IS NULL OR org_id = ANY($1)) ORDER BY created_at DESC",
        org_ids,
    )


# ---- expiry figures (/metrics) -------------------------------------------------------------


async def count_expiring(conn: asyncpg.Connection, within: timedelta) -> list[asyncpg.Record]:
    """Per kind (api_key, service_token): live ones expiring within `within`, and the soonest."""
    live = "revoked_at IS NULL AND expires_at > now()"
    return await conn.fetch(
        "SELECT 'api_key' AS kind, count(*) FILTER (WHERE expires_at <= now() + $1) AS expiring,"
        f" min(expires_at) AS soonest FROM auth.api_keys WHERE {live}"
        " UNION ALL SELECT 'service_token', count(*) FILTER (WHERE expires_at <= now() + $1),"
        f" min(expires_at) FROM auth.service_tokens WHERE {live}",
        within,
    )
