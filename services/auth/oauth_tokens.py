"""The OAuth token endpoint's work: exchanging a code, refreshing and revoking tokens."""

from __future__ import annotations

import hmac
import uuid
from typing import Any

import asyncpg
import jwt

from libs.common.authn import hash_token
from services.auth import sessions
from services.auth.credentials import REFRESH, new_credential
from services.auth.oauth import (
    VERIFIER_RE,
    OAuthError,
    invalid_client,
    invalid_grant,
    pkce_challenge,
    resource_for,
)
from services.auth.settings import AuthSettings
from services.auth.signing import KeyStore
from services.auth.store import credentials, users
from services.auth.store import oauth as store


async def _tokens(
    conn: asyncpg.Connection,
    keystore: KeyStore,
    settings: AuthSettings,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    client_id: str,
    resource: str,
    scope: str,
) -> dict[str, Any]:
    """An access token for the resource and the next refresh token of the grant."""
    refresh = new_credential(REFRESH)
    await credentials.insert_refresh(conn, session_id, refresh.hash, settings.refresh_ttl_s)
    claims = keystore.access_claims(str(user_id), str(session_id))
    claims.update({"iss": settings.oauth_issuer, "aud": resource, "client_id": client_id})
    claims["scope"] = scope
    return {
        "access_token": await keystore.sign(conn, claims),
        "token_type": "Bearer",
        "expires_in": settings.access_ttl_s,
        "refresh_token": refresh.secret,
        "scope": scope,
    }


async def _active_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
    """invalid_grant unless the user is active."""
    user = await users.get(conn, str(user_id))
    if user is None or user["status"] != "active":
        raise invalid_grant("The user is not active.")


async def exchange_code(
    conn: asyncpg.Connection,
    keystore: KeyStore,
    settings: AuthSettings,
    form: dict[str, str],
    source: str,
) -> dict[str, Any] | None:
    """The token exchange for grant_type=authorization_code; None when a spent code was replayed.

    On a replay the grant is ended and the caller must commit that before refusing."""
    client = await _client(conn, form)
    code, verifier = form.get("code") or "", form.get("code_verifier") or ""
    if not code:
        raise OAuthError(400, "invalid_request", "code is required", {"code": "required"})
    if not VERIFIER_RE.match(verifier):
        raise OAuthError(
            400,
            "invalid_request",
            "code_verifier is required (43-128 unreserved characters)",
            {"code_verifier": "required, 43-128 characters of [A-Za-z0-9-._~]"},
        )
    row = await store.lock_code(conn, hash_token(code))
    if row is None or row["client_id"] != client["id"]:
        raise invalid_grant("The authorization code is not valid.")
    if row["used_at"] is not None:
        if row["session_id"] is not None:
            await sessions.end(conn, row["session_id"], row["user_id"], "oauth_code_reuse")
        return None
    if not row["live"]:
        raise invalid_grant("The authorization code has expired.")
    if form.get("redirect_uri") != row["redirect_uri"]:
        raise invalid_grant("redirect_uri does not match the authorization request.")
    if not hmac.compare_digest(pkce_challenge(verifier), row["code_challenge"]):
        raise invalid_grant("The code_verifier does not match the code_challenge.")
    if form.get("resource") and resource_for(settings, form["resource"]) != row["resource"]:
        raise OAuthError(400, "invalid_target", "resource differs from the authorization request")
    await _active_user(conn, row["user_id"])
    session_id = await store.insert_session(
        conn,
        row["user_id"],
        client["id"],
        row["resource"],
        row["scope"],
        settings.refresh_ttl_s,
        source,
    )
    await store.mark_code_used(conn, row["code_hash"], session_id)
    return await _tokens(
        conn,
        keystore,
        settings,
        row["user_id"],
        session_id,
        client["id"],
        row["resource"],
        row["scope"],
    )


async def refresh(
    conn: asyncpg.Connection, keystore: KeyStore, settings: AuthSettings, form: dict[str, str]
) -> dict[str, Any] | None:
    """The token exchange for grant_type=refresh_token, with rotation.

    None when a spent token was replayed: the grant is ended and the caller must commit that
    before refusing."""
    client = await _client(conn, form)
    token = form.get("refresh_token") or ""
    if not token:
        raise OAuthError(
            400, "invalid_request", "refresh_token is required", {"refresh_token": "required"}
        )
    row = await credentials.use_refresh(conn, hash_token(token))
    if row is None or row["kind"] != "oauth" or row["oauth_client_id"] != client["id"]:
        raise invalid_grant("The refresh token is not valid.")
    if row["session_revoked_at"] is not None or not row["live"]:
        raise invalid_grant("The refresh token is not valid.")
    if row["used_at"] is not None:
        await sessions.end(conn, row["session_id"], row["user_id"], "refresh_reuse")
        return None
    if form.get("resource") and resource_for(settings, form["resource"]) != row["resource"]:
        raise OAuthError(400, "invalid_target", "resource differs from the grant's")
    await _active_user(conn, row["user_id"])
    await credentials.mark_refresh_used(conn, row["id"])
    return await _tokens(
        conn,
        keystore,
        settings,
        row["user_id"],
        row["session_id"],
        client["id"],
        row["resource"],
        row["scope"],
    )


async def revoke(
    conn: asyncpg.Connection, keystore: KeyStore, settings: AuthSettings, form: dict[str, str]
) -> None:
    """RFC 7009: end the grant a refresh or access token of this client belongs to.

    Unknown tokens are ignored, as the RFC says."""
    client = await _client(conn, form)
    token = form.get("token") or ""
    if not token:
        raise OAuthError(400, "invalid_request", "token is required", {"token": "required"})
    session_id: uuid.UUID | None = None
    if token.startswith(REFRESH):
        row = await credentials.use_refresh(conn, hash_token(token))
        if row is not None and row["kind"] == "oauth":
            session_id = row["session_id"]
    elif token.count(".") == 2:
        session_id = await _session_of_jwt(conn, keystore, settings.oauth_issuer, token)
    if session_id is None:
        return
    session = await store.get_session(conn, session_id)
    if session is not None and session["oauth_client_id"] == client["id"]:
        await sessions.end(conn, session["id"], session["user_id"], "oauth_revoked")


async def _session_of_jwt(
    conn: asyncpg.Connection, keystore: KeyStore, issuer: str, token: str
) -> uuid.UUID | None:
    """The `sid` of one of our OAuth access tokens, expired ones too.

    The token is signed by us and issued by `issuer`."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    for jwk in (await keystore.jwks(conn))["keys"]:
        if jwk.get("kid") != kid:
            continue
        try:
            claims = jwt.decode(
                token,
                key=jwt.PyJWK(jwk).key,
                algorithms=["EdDSA"],
                options={"verify_aud": False, "verify_exp": False},
            )
            if claims.get("iss") != issuer:
                return None
            return uuid.UUID(str(claims.get("sid")))
        except (jwt.PyJWTError, ValueError):
            return None
    return None


async def _client(conn: asyncpg.Connection, form: dict[str, str]) -> asyncpg.Record:
    """The public client named by client_id, else 401 invalid_client."""
    client_id = form.get("client_id") or ""
    client = await store.get_client(conn, client_id) if 0 < len(client_id) <= 200 else None
    if client is None:
        raise invalid_client("client_id is missing or unknown.")
    return client
