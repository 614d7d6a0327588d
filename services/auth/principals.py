"""Resolve credentials to Principals: what rpc.auth.introspect answers and auth itself uses."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import jwt
import orjson

from libs.common.authn import ROLE_ORDER, Grant, Principal, Verifier, hash_token
from libs.common.errors import ApiError, Unauthenticated
from libs.common.rpc_types import IntrospectRequest
from services.auth import metrics
from services.auth.grants import as_grants, bind, owned
from services.auth.store import credentials, principals, users

ADMIN_TOKEN_ID = "admin-token"


def role_scopes(slug: str, role: str) -> list[str]:
    """The scopes an org role gives a user."""
    rank = ROLE_ORDER.index(role)
    scopes = [f"read:org:{slug}"]
    if rank >= ROLE_ORDER.index("member"):
        scopes.append(f"write:org:{slug}")
    if rank >= ROLE_ORDER.index("admin"):
        scopes += [f"ci:org:{slug}", f"admin:org:{slug}"]
    return scopes


async def for_user(
    conn: asyncpg.Connection,
    user: asyncpg.Record,
    *,
    kind: str = "user",
    credential_id: str | None = None,
    only_teams: list[str] | None = None,
) -> Principal:
    """A user's principal; `only_teams` narrows teams and grants (API keys)."""
    orgs = await principals.user_orgs(conn, user["id"])
    teams = await principals.user_teams(conn, user["id"])
    if only_teams is not None:
        teams = [t for t in teams if t["name"] in only_teams or str(t["id"]) in only_teams]
    grants = await principals.team_grants(conn, [t["id"] for t in teams])
    scopes = [s for o in orgs for s in role_scopes(o["slug"], o["role"])]
    return Principal(
        kind=kind,
        id=str(user["id"]),
        name=user["username"],
        user_id=str(user["id"]),
        platform_role=user["platform_role"] if user["platform_role"] != "user" else None,
        orgs={str(o["id"]): o["role"] for o in orgs},
        org_slugs={o["slug"]: str(o["id"]) for o in orgs},
        teams=tuple(t["name"] for t in teams),
        team_orgs=tuple((str(t["org_id"]), t["name"]) for t in teams),
        scopes=tuple(scopes),
        grants=tuple(as_grants(grants)),
        credential_id=credential_id,
        org=str(orgs[0]["id"]) if orgs else None,
    )


async def by_token_hash(conn: asyncpg.Connection, token_hash: str) -> Principal:
    """The principal of an opaque credential (sbk_, sbt_, sba_, sbs_) by its hash, or 401."""
    key = await credentials.key_by_hash(conn, token_hash)
    if key is not None:
        user = await _active_user(conn, key["user_id"])
        return await for_user(
            conn, user, kind="api_key", credential_id=str(key["id"]), only_teams=key["teams"]
        )
    token = await credentials.token_by_hash(conn, token_hash)
    if token is not None:
        org = str(token["org_id"])
        return Principal(
            kind="service_token",
            id=str(token["id"]),
            name=token["name"],
            org_slugs={token["org_slug"]: org},
            scopes=tuple(token["scopes"]),
            grants=await _token_grants(conn, token),
            credential_id=str(token["id"]),
            org=org,
        )
    admin = await credentials.admin_token_by_hash(conn, token_hash)
    if admin is not None:
        return Principal(
            kind="admin_token",
            id=ADMIN_TOKEN_ID,
            name="admin token",
            platform_role="platform_admin",
            scopes=("*",),
            credential_id=str(admin["id"]),
        )
    session = await credentials.session_by_hash(conn, token_hash)
    if session is not None:
        user = await _active_user(conn, session["user_id"])
        return await for_user(conn, user, credential_id=str(session["id"]))
    raise Unauthenticated("The credential is not valid.")


async def _token_grants(conn: asyncpg.Connection, token: asyncpg.Record) -> tuple[Grant, ...]:
    """A token's grants that its org still holds (a grant the org lost stops working)."""
    raw = token["grants"]
    if not raw:
        return ()
    org = str(token["org_id"])
    stored = as_grants(orjson.loads(raw) if isinstance(raw, str) else raw, team="", org=org)
    org_owns = as_grants(await principals.org_grants(conn, token["org_id"]))
    # a token issued before grants bound server ids names its servers: bound by the org's own
    legacy, _ = bind([g for g in stored if g.server_id is None], org_owns)
    current = [g for g in stored if g.server_id is not None] + legacy
    return tuple(g for g in current if owned(g, org_owns))


async def by_session(conn: asyncpg.Connection, user_id: str, session_id: str | None) -> Principal:
    """The principal behind a verified JWT: its session must be live and its user active."""
    try:
        uid = uuid.UUID(user_id)
        sid = uuid.UUID(session_id or "")
    except ValueError:
        raise Unauthenticated("The credential is not valid.") from None
    if not await credentials.live_session(conn, sid, uid):
        raise Unauthenticated("The session has ended.")
    user = await _active_user(conn, uid)
    return await for_user(conn, user, credential_id=str(sid))


async def _active_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> asyncpg.Record:
    """The user if active, else 401."""
    user = await users.get(conn, str(user_id))
    if user is None or user["status"] != "active":
        raise Unauthenticated("The user is not active.")
    return user


async def introspect(pool: asyncpg.Pool, request: IntrospectRequest) -> Principal:
    """rpc.auth.introspect: an opaque credential's hash, or a JWT's user and session → principal."""
    kind = "opaque" if request.token_hash is not None else "session"
    try:
        async with pool.acquire() as conn:
            if request.token_hash is not None:
                principal = await by_token_hash(conn, request.token_hash)
            elif request.user_id is not None:
                principal = await by_session(conn, request.user_id, request.session_id)
            else:
                raise Unauthenticated("Nothing to introspect.")
    except ApiError:
        metrics.verification(kind, "rejected")
        raise
    except Exception:
        metrics.verification(kind, "error")
        raise
    metrics.verification(kind, "valid")
    return principal


class LocalVerifier(Verifier):
    """The auth service's own verifier: same checks, resolved from its database with no cache."""

    def __init__(self, bus: Any, pool: asyncpg.Pool, keystore: Any, cookie_secure: bool) -> None:
        super().__init__(bus, ttl=0.0, cookie_secure=cookie_secure)
        self.pool = pool
        self.keystore = keystore

    async def _introspect(self, key: tuple[str, ...], request: IntrospectRequest) -> Principal:
        """Resolve directly (auth never serves a stale principal)."""
        return await introspect(self.pool, request)

    async def _refresh_keys(self, kid: str) -> jwt.PyJWK | None:
        """Load the verifying key of `kid` from the database (with its algorithm)."""
        async with self.pool.acquire() as conn:
            doc = await self.keystore.jwks(conn)
        for jwk in doc["keys"]:
            if jwk["kid"] == kid:
                return jwt.PyJWK(jwk)
        return None


__all__ = ["LocalVerifier", "by_session", "by_token_hash", "hash_token", "introspect"]
