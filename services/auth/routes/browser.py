"""Browser sign-in: an HTML form that sets an HttpOnly SameSite session cookie plus CSRF cookie."""

from __future__ import annotations

import html
import secrets
import uuid

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from libs.common.authn import authenticate, constant_time_equal, cookies_of
from libs.common.errors import ApiError, Forbidden, ValidationError
from libs.common.http import json_response
from services.auth import login, sessions
from services.auth.context import context_of
from services.auth.credentials import SESSION, new_credential
from services.auth.routes.auth import client_source
from services.auth.store import credentials
from services.auth.views import user_view

FORM = """<!doctype html><html><head><meta charset="utf-8"><title>Switchboard sign-in</title>
</head><body><form method="post" action="/api/v1/auth/login-form">
<input type="hidden" name="csrf_token" value="{csrf}">
<input type="hidden" name="next" value="{next}">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required>
</label><label>Code <input name="mfa_code" inputmode="numeric" autocomplete="one-time-code">
</label><button type="submit">Sign in</button>{error}</form></body></html>"""


def _safe_next(value: str | None) -> str:
    """Only same-site relative redirects (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _form_page(request: Request, csrf: str, error: str = "", status: int = 200) -> Response:
    """The form with a fresh CSRF token in a cookie and a hidden field."""
    body = FORM.format(
        csrf=csrf,
        next=html.escape(_safe_next(request.query_params.get("next")), quote=True),
        error=f"<p role='alert'>{html.escape(error)}</p>" if error else "",
    )
    response = HTMLResponse(body, status)
    _set_csrf(request, response, csrf)
    return response


def _set_csrf(request: Request, response: Response, csrf: str) -> None:
    """The double-submit cookie (readable by the page's script, so not HttpOnly)."""
    names = cookies_of(request)
    response.set_cookie(
        names.csrf,
        csrf,
        max_age=context_of(request).settings.session_ttl_s,
        path="/",  # `__Host-`: Secure, Path=/ and no Domain (docs/AUTH.md)
        secure=names.secure,
        httponly=False,
        samesite="strict",
    )


async def login_form(request: Request) -> Response:
    """GET: the sign-in form."""
    return _form_page(request, secrets.token_urlsafe(24))


async def submit_login_form(request: Request) -> Response:
    """POST: check the form's CSRF echo and credentials, then set the session cookie."""
    form = await request.form()
    csrf_cookie = request.cookies.get(cookies_of(request).csrf, "")
    csrf_field = str(form.get("csrf_token") or "")
    if not csrf_cookie or not csrf_field or not constant_time_equal(csrf_cookie, csrf_field):
        raise Forbidden("The form's CSRF token does not match its cookie; reload the form.")
    username = str(form.get("username") or "").strip()
    password = str(form.get("password") or "")
    if "\x00" in username + password:
        raise ValidationError("The form contains a NUL character.")
    if not username or not password:
        raise ValidationError(
            "Username and password are required.",
            details={"fields": {"username": "required", "password": "required"}},
        )
    ctx = context_of(request)
    try:
        user = await login.sign_in(
            ctx.pool,
            ctx.passwords,
            ctx.settings,
            username,
            password,
            str(form.get("mfa_code") or "") or None,
            client_source(request),
        )
    except ApiError as exc:
        if "text/html" in request.headers.get("accept", ""):
            return _form_page(request, secrets.token_urlsafe(24), exc.message, exc.status)
        raise
    cookie = new_credential(SESSION)
    async with ctx.pool.acquire() as conn, conn.transaction():
        await credentials.insert_session(
            conn,
            user["id"],
            "browser",
            ctx.settings.session_ttl_s,
            client_source(request),
            cookie.hash,
        )
    csrf = secrets.token_urlsafe(24)
    if "text/html" in request.headers.get("accept", ""):
        response: Response = RedirectResponse(_safe_next(str(form.get("next") or "")), 303)
    else:
        response = json_response({"user": user_view(user), "csrf_token": csrf})
    names = cookies_of(request)
    response.set_cookie(
        names.session,
        cookie.secret,
        max_age=ctx.settings.session_ttl_s,
        path="/",
        secure=names.secure,
        httponly=True,
        samesite="lax",
    )
    _set_csrf(request, response, csrf)
    return response


async def logout_form(request: Request) -> Response:
    """End the cookie session (CSRF-checked) and clear both cookies."""
    principal = await authenticate(request)
    if principal.kind == "user" and principal.credential_id and principal.user_id:
        async with context_of(request).pool.acquire() as conn, conn.transaction():
            await sessions.end(
                conn, uuid.UUID(principal.credential_id), uuid.UUID(principal.user_id), "logout"
            )
    response = json_response({"logged_out": True})
    names = cookies_of(request)
    for name in (names.session, names.csrf):
        response.delete_cookie(name, path="/", secure=names.secure)
    return response


routes = [
    Route("/api/v1/auth/login-form", login_form, methods=["GET"]),
    Route("/api/v1/auth/login-form", submit_login_form, methods=["POST"]),
    Route("/api/v1/auth/logout-form", logout_form, methods=["POST"]),
]
