"""Sign-in: setup, login, refresh, logout, verify, me, change-password, JWKS."""

from __future__ import annotations

import uuid

from asyncpg.exceptions import UniqueViolationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate, cookies_of, hash_token
from libs.common.errors import Conflict, Unauthenticated, Unprocessable
from libs.common.events import USER_CREATED
from libs.common.forwarded import client_address
from libs.common.http import json_response, parse_body
from services.auth import login, sessions
from services.auth.context import context_of
from services.auth.events_out import emit, user_payload
from services.auth.schemas import ChangePasswordIn, LoginIn, LogoutIn, RefreshIn, SetupIn
from services.auth.store import credentials, users
from services.auth.views import user_view


def client_source(request: Request) -> str:
    """The caller's address (libs/common/forwarded.py: X-Real-IP from a trusted proxy only)."""
    return client_address(request, context_of(request).settings.trusted_networks)


def check_password(request: Request, password: str, username: str, field: str) -> None:
    """422 when the password breaks the policy."""
    problems = context_of(request).passwords.problems(password, username)
    if problems:
        raise Unprocessable(
            "The password does not meet the policy.",
            details={"fields": {field: "; ".join(problems)}},
        )


async def setup(request: Request) -> Response:
    """Create the first platform admin (once; afterwards 409)."""
    body = await parse_body(request, SetupIn)
    check_password(request, body.password, body.username, "password")
    hashed = await context_of(request).passwords.hash(body.password)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE auth.users IN SHARE ROW EXCLUSIVE MODE")
        if await users.count_admins(conn):
            raise Conflict("Setup is done already: a platform admin exists.")
        try:
            row = await users.insert(
                conn,
                username=body.username,
                email=body.email,
                display_name=body.display_name,
                password_hash=hashed,
                platform_role="platform_admin",
            )
        except UniqueViolationError:
            raise Conflict("That username or email is taken.") from None
        await emit(conn, USER_CREATED, user_payload(row), None)
    return json_response({"user": user_view(row)}, 201)


async def setup_status(request: Request) -> Response:
    """Whether setup is still needed (public)."""
    async with context_of(request).pool.acquire() as conn:
        done = bool(await users.count_admins(conn))
    return json_response({"setup_required": not done})


async def sign_in(request: Request) -> Response:
    """Password (+ TOTP) login → access token, refresh token, user."""
    body = await parse_body(request, LoginIn)
    ctx = context_of(request)
    user = await login.sign_in(
        ctx.pool,
        ctx.passwords,
        ctx.settings,
        body.login,
        body.password,
        body.mfa_code,
        client_source(request),
    )
    async with ctx.pool.acquire() as conn, conn.transaction():
        out = await sessions.issue(conn, ctx.keystore, ctx.settings, user, client_source(request))
    return json_response(out)


async def refresh(request: Request) -> Response:
    """Rotate a refresh token; reusing a spent one revokes its whole family."""
    body = await parse_body(request, RefreshIn)
    ctx = context_of(request)
    async with ctx.pool.acquire() as conn, conn.transaction():
        out = await sessions.rotate(
            conn,
            ctx.keystore,
            ctx.settings,
            hash_token(body.refresh_token),
            lambda c, uid: users.get(c, str(uid)),
        )
    if not out:
        raise Unauthenticated("The refresh token was used before; its session is revoked.")
    return json_response(out)


async def logout(request: Request) -> Response:
    """End the caller's session (JWT sid or cookie session)."""
    principal = await authenticate(request)
    body = LogoutIn()
    if await request.body():
        body = await parse_body(request, LogoutIn)
    ended = False
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        if principal.kind == "user" and principal.credential_id and principal.user_id:
            ended = await sessions.end(
                conn, uuid.UUID(principal.credential_id), uuid.UUID(principal.user_id), "logout"
            )
        if body.refresh_token and principal.user_id:
            row = await credentials.session_of_refresh(conn, hash_token(body.refresh_token))
            if row is not None and str(row["user_id"]) == principal.user_id:
                ended = await sessions.end(conn, row["id"], row["user_id"], "logout") or ended
    response = json_response({"logged_out": True, "session_ended": ended})
    names = cookies_of(request)
    if request.cookies.get(names.session):
        for name in (names.session, names.csrf):
            response.delete_cookie(name, path="/", secure=names.secure)
    return response


async def verify(request: Request) -> Response:
    """Check the credential and return the principal it stands for."""
    principal = await authenticate(request)
    return json_response({"valid": True, "principal": principal.to_dict()})


async def me(request: Request) -> Response:
    """The signed-in user with orgs, teams and grants."""
    principal = await authenticate(request)
    user = None
    if principal.user_id:
        async with context_of(request).pool.acquire() as conn:
            row = await users.get(conn, principal.user_id)
        user = user_view(row) if row else None
    return json_response({"user": user, "principal": principal.to_dict()})


async def change_password(request: Request) -> Response:
    """Change one's password (current one required); other sessions end."""
    principal = await authenticate(request)
    body = await parse_body(request, ChangePasswordIn)
    if principal.user_id is None:
        raise Unauthenticated("Only a user has a password.")
    ctx = context_of(request)
    async with ctx.pool.acquire() as conn:
        user = await users.get(conn, principal.user_id)
    if user is None or not await ctx.passwords.verify(user["password_hash"], body.current_password):
        raise Unauthenticated("The current password is wrong.")
    check_password(request, body.new_password, user["username"], "new_password")
    hashed = await ctx.passwords.hash(body.new_password)
    keep = principal.credential_id if principal.kind == "user" else None
    async with ctx.pool.acquire() as conn, conn.transaction():
        await users.set_password(conn, user["id"], hashed)
        ended = await sessions.end_all(
            conn, user["id"], "password_changed", uuid.UUID(keep) if keep else None
        )
    return json_response({"changed": True, "sessions_ended": ended})


async def jwks(request: Request) -> Response:
    """The public keys that verify access tokens (public)."""
    async with context_of(request).pool.acquire() as conn:
        doc = await context_of(request).keystore.jwks(conn)
    return json_response(doc, headers={"Cache-Control": "public, max-age=60"})


routes = [
    Route("/api/v1/auth/setup", setup, methods=["POST"]),
    Route("/api/v1/auth/setup", setup_status, methods=["GET"]),
    Route("/api/v1/auth/login", sign_in, methods=["POST"]),
    Route("/api/v1/auth/refresh", refresh, methods=["POST"]),
    Route("/api/v1/auth/logout", logout, methods=["POST"]),
    Route("/api/v1/auth/verify", verify, methods=["GET"]),
    Route("/api/v1/auth/me", me, methods=["GET"]),
    Route("/api/v1/auth/change-password", change_password, methods=["POST"]),
    Route("/api/v1/auth/jwks.json", jwks, methods=["GET"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
]
