"""Credentials: API keys (per user), service tokens (per org), the platform admin token."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate, require_platform_admin
from libs.common.errors import Forbidden, NotFound, Unprocessable
from libs.common.events import (
    KEY_CREATED,
    KEY_REVOKED,
    TOKEN_CREATED,
    TOKEN_REVOKED,
    CredentialChanged,
)
from libs.common.http import json_response, no_content, parse_body
from libs.common.pagination import paginate_request
from services.auth.access import org_for
from services.auth.context import context_of
from services.auth.credential_schemas import KeyIn, TokenIn
from services.auth.credentials import ADMIN_TOKEN, API_KEY, SERVICE_TOKEN, new_credential
from services.auth.events_out import emit
from services.auth.grants import as_grants, bind, not_owned, to_json
from services.auth.store import credentials, principals
from services.auth.views import key_view, token_view


def _uuid(value: str, what: str) -> uuid.UUID:
    """A path id, else 404."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(f"No such {what}.", details={what: value}) from None


def _key_payload(row: object) -> CredentialChanged:
    """The event form of an API key."""
    r = row  # asyncpg.Record
    return CredentialChanged(
        id=str(r["id"]),  # type: ignore[index]
        kind="api_key",
        name=r["name"],  # type: ignore[index]
        prefix=r["prefix"],  # type: ignore[index]
        user=str(r["user_id"]),  # type: ignore[index]
        teams=list(r["teams"]) if r["teams"] is not None else None,  # type: ignore[index]
        expires_at=r["expires_at"].isoformat() if r["expires_at"] else None,  # type: ignore[index]
    )


async def create_key(request: Request) -> Response:
    """Create an API key for the signed-in user, optionally narrowed to teams; shown once."""
    principal = await authenticate(request)
    body = await parse_body(request, KeyIn)
    if principal.kind != "user" or principal.user_id is None:
        raise Forbidden("API keys are created by signed-in users.")
    if body.teams is not None:
        unknown = [t for t in body.teams if t not in principal.teams]
        if unknown:
            raise Unprocessable(
                "The key may only be narrowed to your teams.",
                details={"fields": {"teams": f"not your teams: {', '.join(unknown)}"}},
            )
    cred = new_credential(API_KEY)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        row = await credentials.insert_key(
            conn,
            uuid.UUID(principal.user_id),
            body.name,
            cred.prefix,
            cred.hash,
            body.teams,
            body.expires_at,
        )
        await emit(conn, KEY_CREATED, _key_payload(row), principal, principal.org)
    return json_response({**key_view(row), "key": cred.secret}, 201)


async def list_keys(request: Request) -> Response:
    """The signed-in user's live API keys (prefix only)."""
    principal = await authenticate(request)
    if principal.user_id is None:
        raise Forbidden("API keys belong to users.")
    async with context_of(request).pool.acquire() as conn:
        rows = await credentials.list_keys(conn, uuid.UUID(principal.user_id))
    items = [key_view(r) for r in rows]
    return json_response(paginate_request(request, items))


async def revoke_key(request: Request) -> Response:
    """Revoke one of one's API keys (platform admins: anyone's)."""
    principal = await authenticate(request)
    key_id = _uuid(request.path_params["id"], "key")
    owner = None if principal.is_platform_admin else principal.user_id
    if owner is None and not principal.is_platform_admin:
        raise Forbidden("API keys belong to users.")
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        row = await credentials.revoke_key(conn, key_id, uuid.UUID(owner) if owner else None)
        if row is None:
            raise NotFound("No such key.", details={"key": str(key_id)})
        await emit(conn, KEY_REVOKED, _key_payload(row), principal, principal.org)
    return no_content()


def _token_payload(row: object, slug: str) -> CredentialChanged:
    """The event form of a service token."""
    r = row
    return CredentialChanged(
        id=str(r["id"]),  # type: ignore[index]
        kind="service_token",
        name=r["name"],  # type: ignore[index]
        prefix=r["prefix"],  # type: ignore[index]
        org=str(r["org_id"]),  # type: ignore[index]
        scopes=list(r["scopes"]),  # type: ignore[index]
        expires_at=r["expires_at"].isoformat() if r["expires_at"] else None,  # type: ignore[index]
    )


async def create_token(request: Request) -> Response:
    """Create a service token for an org with scopes and expiry (org admin); shown once."""
    principal = await authenticate(request)
    body = await parse_body(request, TokenIn)
    cred = new_credential(SERVICE_TOKEN)
    expires = (
        datetime.now(UTC) + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    )
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        org = await org_for(conn, principal, request.path_params["org"], "admin")
        foreign = [s for s in body.scopes if s.split(":")[2] not in (org["slug"], str(org["id"]))]
        if foreign and not principal.is_platform_admin:
            raise Unprocessable(
                "Scopes must name this org.",
                details={"fields": {"scopes": f"not this org: {', '.join(foreign)}"}},
            )
        grants = None
        if body.grants is not None:
            asked = as_grants([g.model_dump() for g in body.grants], team="", org=str(org["id"]))
            org_owns = as_grants(await principals.org_grants(conn, org["id"]))
            grants, unknown = bind(asked, org_owns)
            missing = unknown + not_owned(grants, org_owns)
            if missing:
                raise Unprocessable(
                    "A service token may only carry grants its org's teams hold.",
                    details={"fields": {"grants": f"not held by the org: {', '.join(missing)}"}},
                )
        row = await credentials.insert_token(
            conn,
            org["id"],
            body.name,
            body.description,
            cred.prefix,
            cred.hash,
            body.scopes,
            uuid.UUID(principal.user_id) if principal.user_id else None,
            expires,
            to_json(grants) if grants is not None else None,
        )
        await emit(conn, TOKEN_CREATED, _token_payload(row, org["slug"]), principal, str(org["id"]))
    return json_response({**token_view(row), "token": cred.secret}, 201)


async def list_tokens(request: Request) -> Response:
    """An org's live service tokens (org admin; prefix only)."""
    principal = await authenticate(request)
    async with context_of(request).pool.acquire() as conn:
        org = await org_for(conn, principal, request.path_params["org"], "admin")
        rows = await credentials.list_tokens(conn, org["id"])
    items = [token_view(r) for r in rows]
    return json_response(paginate_request(request, items))


async def list_all_tokens(request: Request) -> Response:
    """Service tokens of every org where the caller is an admin (platform admins: all)."""
    principal = await authenticate(request)
    admin_of = [uuid.UUID(o) for o, role in principal.orgs.items() if role in ("admin", "owner")]
    only = None if principal.is_platform_admin else admin_of
    async with context_of(request).pool.acquire() as conn:
        rows = await credentials.list_tokens_in(conn, only)
    items = [token_view(r) for r in rows]
    return json_response(paginate_request(request, items))


async def revoke_token(request: Request) -> Response:
    """Revoke a service token (org admin)."""
    principal = await authenticate(request)
    token_id = _uuid(request.path_params["id"], "token")
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        org = await org_for(conn, principal, request.path_params["org"], "admin")
        row = await credentials.revoke_token(conn, org["id"], token_id)
        if row is None:
            raise NotFound("No such token.", details={"token": str(token_id)})
        await emit(conn, TOKEN_REVOKED, _token_payload(row, org["slug"]), principal, str(org["id"]))
    return no_content()


async def rotate_admin_token(request: Request) -> Response:
    """Issue a new platform admin token (sba_…), revoking the previous one; shown once."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    cred = new_credential(ADMIN_TOKEN)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        new_id, revoked = await credentials.replace_admin_token(
            conn,
            cred.prefix,
            cred.hash,
            uuid.UUID(principal.user_id) if principal.user_id else None,
        )
        for old in revoked:
            payload = CredentialChanged(str(old), "admin_token", "admin token", "sba_")
            await emit(conn, TOKEN_REVOKED, payload, principal)
        payload = CredentialChanged(str(new_id), "admin_token", "admin token", cred.prefix)
        await emit(conn, TOKEN_CREATED, payload, principal)
    return json_response({"id": str(new_id), "token": cred.secret, "prefix": cred.prefix}, 201)


async def rotate_signing_key(request: Request) -> Response:
    """Make a new JWT signing key active; tokens signed with the old one verify until expiry."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        out = await context_of(request).keystore.rotate(conn, principal.id)
    return json_response(out, 201)


routes = [
    Route("/api/v1/keys", create_key, methods=["POST"]),
    Route("/api/v1/keys", list_keys, methods=["GET"]),
    Route("/api/v1/keys/{id}", revoke_key, methods=["DELETE"]),
    Route("/api/v1/orgs/{org}/tokens", create_token, methods=["POST"]),
    Route("/api/v1/orgs/{org}/tokens", list_tokens, methods=["GET"]),
    Route("/api/v1/orgs/{org}/tokens/{id}", revoke_token, methods=["DELETE"]),
    Route("/api/v1/tokens", list_all_tokens, methods=["GET"]),
    Route("/api/v1/auth/admin-token/rotate", rotate_admin_token, methods=["POST"]),
    Route("/api/v1/auth/signing-keys/rotate", rotate_signing_key, methods=["POST"]),
]
