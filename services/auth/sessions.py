"""Sign-in sessions: issue access + refresh tokens, rotate refresh tokens, end sessions."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from libs.common import outbox
from libs.common.errors import Unauthenticated
from libs.common.events import SESSION_REVOKED, SessionChanged
from services.auth.credentials import REFRESH, new_credential
from services.auth.settings import AuthSettings
from services.auth.signing import KeyStore
from services.auth.store import credentials
from services.auth.views import user_view


async def issue(
    conn: asyncpg.Connection,
    keystore: KeyStore,
    settings: AuthSettings,
    user: asyncpg.Record,
    source: str,
) -> dict[str, Any]:
    """Open an API session for `user`: a JWT and the first refresh token of a new family."""
    session_id = await credentials.insert_session(
        conn, user["id"], "api", settings.refresh_ttl_s, source
    )
    return await _tokens(conn, keystore, settings, user, session_id)


async def _tokens(
    conn: asyncpg.Connection,
    keystore: KeyStore,
    settings: AuthSettings,
    user: asyncpg.Record,
    session_id: uuid.UUID,
) -> dict[str, Any]:
    """A new access token and refresh token for the session."""
    refresh = new_credential(REFRESH)
    await credentials.insert_refresh(conn, session_id, refresh.hash, settings.refresh_ttl_s)
    access = await keystore.sign(conn, keystore.access_claims(str(user["id"]), str(session_id)))
    return {
        "access_token": access,
        "token": access,  # the seeds' name
        "token_type": "bearer",
        "expires_in": settings.access_ttl_s,
        "refresh_token": refresh.secret,
        "refreshToken": refresh.secret,
        "user": user_view(user),
    }


async def rotate(
    conn: asyncpg.Connection,
    keystore: KeyStore,
    settings: AuthSettings,
    token_hash: str,
    load_user: Any,
) -> dict[str, Any]:
    """Exchange a refresh token for new tokens; reusing a spent one ends its whole family."""
    row = await credentials.use_refresh(conn, token_hash)
    if row is None or row["session_revoked_at"] is not None or not row["live"]:
        raise Unauthenticated("The refresh token is not valid.")
    if row["kind"] == "oauth":  # an MCP client's grant never becomes a platform-wide token
        raise Unauthenticated("The refresh token is not valid.")
    if row["used_at"] is not None:
        await end(conn, row["session_id"], row["user_id"], "refresh_reuse")
        return {}
    user = await load_user(conn, row["user_id"])
    if user is None or user["status"] != "active":
        raise Unauthenticated("The user is not active.")
    await credentials.mark_refresh_used(conn, row["id"])
    return await _tokens(conn, keystore, settings, user, row["session_id"])


async def end(
    conn: asyncpg.Connection, session_id: uuid.UUID, user_id: uuid.UUID, reason: str
) -> bool:
    """Revoke a session (its JWTs and refresh tokens stop working) and say so."""
    row = await credentials.revoke_session(conn, session_id, reason)
    if row is None:
        return False
    await outbox.enqueue(
        conn,
        "auth",
        SESSION_REVOKED.event(
            SessionChanged(str(session_id), str(user_id), reason), source="auth", actor=str(user_id)
        ),
    )
    return True


async def end_all(
    conn: asyncpg.Connection, user_id: uuid.UUID, reason: str, keep: uuid.UUID | None = None
) -> int:
    """Revoke every session of a user (but `keep`)."""
    rows = await credentials.revoke_user_sessions(conn, user_id, reason, keep)
    for row in rows:
        await outbox.enqueue(
            conn,
            "auth",
            SESSION_REVOKED.event(
                SessionChanged(str(row["id"]), str(user_id), reason), source="auth"
            ),
        )
    return len(rows)
