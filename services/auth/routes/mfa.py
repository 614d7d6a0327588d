"""TOTP MFA: enrol (secret + otpauth URI), confirm, disable with a valid code."""

from __future__ import annotations

import uuid

import pyotp
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate
from libs.common.errors import Conflict, Forbidden, Unprocessable
from libs.common.events import USER_UPDATED
from libs.common.http import json_response, parse_body
from services.auth.context import context_of
from services.auth.events_out import emit, user_payload
from services.auth.schemas import MfaCodeIn
from services.auth.store import users

ISSUER = "Switchboard"


async def _me(request: Request):  # type: ignore[no-untyped-def]
    """The signed-in user's principal and row."""
    principal = await authenticate(request)
    if principal.kind != "user" or principal.user_id is None:
        raise Forbidden("MFA belongs to a signed-in user.")
    async with context_of(request).pool.acquire() as conn:
        row = await users.get(conn, principal.user_id)
    return principal, row


def _bad_code() -> Unprocessable:
    """422 for a wrong code."""
    return Unprocessable("The code is wrong.", details={"fields": {"code": "does not match"}})


async def enrol(request: Request) -> Response:
    """Start enrolment: a new secret and its otpauth:// URI (MFA is on once confirmed)."""
    principal, user = await _me(request)
    if user["mfa_enabled"]:
        raise Conflict("MFA is on already; disable it first.")
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user["username"], issuer_name=ISSUER)
    async with context_of(request).pool.acquire() as conn:
        await users.set_mfa(conn, user["id"], secret, False)
    return json_response({"secret": secret, "otpauth_uri": uri}, 201)


async def confirm(request: Request) -> Response:
    """Confirm enrolment with a current code: from now on login needs a code."""
    principal, user = await _me(request)
    body = await parse_body(request, MfaCodeIn)
    if user["mfa_enabled"] or not user["mfa_secret"]:
        raise Conflict("There is no enrolment to confirm.")
    if not pyotp.TOTP(user["mfa_secret"]).verify(body.code, valid_window=1):
        raise _bad_code()
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        await users.set_mfa(conn, user["id"], user["mfa_secret"], True)
        row = await users.get(conn, str(user["id"]))
        await emit(conn, USER_UPDATED, user_payload(row), principal)
    return json_response({"mfa_enabled": True})


async def disable(request: Request) -> Response:
    """Turn MFA off with a valid code."""
    principal, user = await _me(request)
    body = await parse_body(request, MfaCodeIn)
    if not user["mfa_enabled"]:
        raise Conflict("MFA is not on.")
    if not pyotp.TOTP(user["mfa_secret"]).verify(body.code, valid_window=1):
        raise _bad_code()
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        await users.set_mfa(conn, uuid.UUID(str(user["id"])), None, False)
        row = await users.get(conn, str(user["id"]))
        await emit(conn, USER_UPDATED, user_payload(row), principal)
    return json_response({"mfa_enabled": False})


routes = [
    Route("/api/v1/auth/mfa/enroll", enrol, methods=["POST"]),
    Route("/api/v1/auth/mfa/confirm", confirm, methods=["POST"]),
    Route("/api/v1/auth/mfa/disable", disable, methods=["POST"]),
]
