"""OAuth 2.1 authorization server for MCP clients: metadata, registration, authorize, token, revoke.

Errors of /oauth/register, /oauth/token and /oauth/revoke use the RFC 6749/7591 shape
(`{"error": "invalid_grant", "error_description": …, "details": {"fields": …}}`) because MCP
client SDKs parse exactly that; authorization errors go to the client's redirect URI once the
client and redirect URI are known to be genuine, and are a JSON 400 (VALIDATION_ERROR) before.

Over 300 lines on purpose: the five endpoints of one authorization server share its form
parsing, client checks and the RFC 6749 error shape; the work itself is in oauth.py and
oauth_tokens.py.
"""

from __future__ import annotations

import html
import math
import secrets
import uuid
from typing import Any
from urllib.parse import urlencode

import pydantic
import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from libs.common.authn import (
    Principal,
    authenticate,
    constant_time_equal,
    cookies_of,
    credential_from,
)
from libs.common.errors import ApiError, Forbidden, ValidationError
from libs.common.http import field_errors, read_json
from services.auth import oauth, oauth_tokens
from services.auth.context import context_of
from services.auth.credential_schemas import ClientIn
from services.auth.routes.auth import client_source
from services.auth.store import oauth as store

log = structlog.get_logger()
REGISTRATION_WINDOW_S = 3600.0  # AUTH_OAUTH_REGISTRATIONS_PER_HOUR counts in this window
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
AUTHORIZE_FIELDS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "scope",
    "state",
)
CONSENT = """<!doctype html><html><head><meta charset="utf-8"><title>Authorize {client}</title>
</head><body><h1>Allow {client} to use Switchboard as {user}?</h1>
<p>It will be able to list and call the MCP tools you may use at {resource}
(scope: {scope}) until you revoke it.</p><p>It will return to {redirect}.</p>
<form method="post" action="/oauth/authorize">{hidden}
<input type="hidden" name="csrf_token" value="{csrf}">
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></form></body></html>"""


async def metadata(request: Request) -> Response:
    """RFC 8414 authorization server metadata."""
    issuer = context_of(request).settings.oauth_issuer
    registration = (
        {"registration_endpoint": f"{issuer}/oauth/register"}
        if context_of(request).settings.oauth_registration != "off"
        else {}
    )
    return JSONResponse(
        {
            **registration,
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "scopes_supported": list(oauth.SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(oauth.GRANT_TYPES),
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
        },
        headers={"Cache-Control": "public, max-age=300"},
    )


async def registration_refused(request: Request) -> Response | None:
    """The answer to a registration AUTH_OAUTH_REGISTRATION does not allow, else None.

    `off` refuses all, `admin` wants a platform admin's credential (the initial access token)."""
    mode = context_of(request).settings.oauth_registration
    if mode == "off":
        return oauth.OAuthError(
            403, "access_denied", "Dynamic client registration is turned off here."
        ).response()
    if mode != "admin":
        return None
    challenge = {"WWW-Authenticate": 'Bearer realm="switchboard", error="invalid_token"'}
    if credential_from(request)[0] is None:
        return oauth.OAuthError(
            401, "invalid_token", "Registration needs a platform admin's token.", headers=challenge
        ).response()
    try:
        principal = await authenticate(request)
    except ApiError:
        return oauth.OAuthError(
            401, "invalid_token", "The token is not valid.", headers=challenge
        ).response()
    if not principal.is_platform_admin:
        return oauth.OAuthError(
            403, "insufficient_scope", "Registration needs a platform admin's token."
        ).response()
    return None


async def register(request: Request) -> Response:
    """RFC 7591 dynamic client registration of a public client (PKCE, no secret).

    As AUTH_OAUTH_REGISTRATION allows: open (rate-limited per source), admin only, or off."""
    refused = await registration_refused(request)
    if refused is not None:
        return refused
    try:
        data = await read_json(request)
    except ApiError as exc:
        return oauth.OAuthError(400, "invalid_client_metadata", exc.message).response()
    try:
        body = ClientIn.model_validate(data)
    except pydantic.ValidationError as exc:
        fields = field_errors(exc)
        error = (
            "invalid_redirect_uri"
            if any(f.startswith("redirect_uris") for f in fields)
            else "invalid_client_metadata"
        )
        return oauth.OAuthError(400, error, "The client metadata is invalid.", fields).response()
    extra = body.model_dump(
        exclude_none=True,
        include={"client_uri", "logo_uri", "tos_uri", "policy_uri", "software_id"}
        | {"software_version", "contacts"},
    )
    settings, source = context_of(request).settings, client_source(request)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        if settings.oauth_registration == "open":
            count, left_s = await store.recent_clients(conn, source, REGISTRATION_WINDOW_S)
            if count >= settings.oauth_registrations_per_hour:
                retry = str(max(1, math.ceil(left_s)))
                return oauth.OAuthError(
                    429,
                    "rate_limited",
                    "Too many client registrations from this address; try again later.",
                    headers={"Retry-After": retry},
                ).response()
        row = await store.insert_client(
            conn,
            oauth.new_client_id(),
            body.client_name,
            body.redirect_uris,
            list(dict.fromkeys(body.grant_types)),
            oauth.granted_scope(body.scope),
            extra,
            source,
        )
    log.info("oauth_client_registered", client_id=row["id"])
    return JSONResponse(oauth.client_view(row), 201, headers=oauth.NO_STORE)


async def _checked(request: Request, params: dict[str, str]) -> oauth.AuthorizeRequest | Response:
    """The checked authorization request, or the response that reports its error."""
    async with context_of(request).pool.acquire() as conn:
        try:
            client, redirect_uri = await oauth.check_client_and_redirect(conn, params)
        except ValueError as exc:
            raise ValidationError(
                "The authorization request names no valid client or redirect URI.",
                details={"fields": exc.args[0]},
            ) from None
    try:
        return oauth.check_authorize(context_of(request).settings, client, redirect_uri, params)
    except oauth.RedirectError as exc:
        sep = "&" if "?" in redirect_uri else "?"
        query = {"error": exc.error, "error_description": exc.description}
        query["iss"] = context_of(request).settings.oauth_issuer
        if params.get("state") is not None:
            query["state"] = params["state"]
        return RedirectResponse(redirect_uri + sep + urlencode(query), 303)


async def _signed_in(request: Request) -> Principal | None:
    """The user of the browser session cookie, or None."""
    cookie = request.cookies.get(cookies_of(request).session)
    if not cookie:
        return None
    try:
        principal = await context_of(request).verifier.verify(cookie)
    except ApiError:
        return None
    return principal if principal.kind == "user" and principal.user_id else None


async def authorize(request: Request) -> Response:
    """GET: sign in (session cookie or the login form), then the consent page."""
    params = {k: v for k, v in request.query_params.items() if k in AUTHORIZE_FIELDS}
    checked = await _checked(request, params)
    if isinstance(checked, Response):
        return checked
    principal = await _signed_in(request)
    if principal is None:
        back = "/oauth/authorize?" + urlencode(params)
        return RedirectResponse("/api/v1/auth/login-form?" + urlencode({"next": back}), 303)
    names = cookies_of(request)
    csrf = request.cookies.get(names.csrf) or secrets.token_urlsafe(24)
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(v, quote=True)}">'
        for k, v in params.items()
    )
    page = CONSENT.format(
        client=html.escape(checked.client_name),
        user=html.escape(principal.name),
        resource=html.escape(checked.resource),
        scope=html.escape(checked.scope),
        redirect=html.escape(checked.redirect_uri),
        hidden=hidden,
        csrf=csrf,
    )
    response = HTMLResponse(page, headers=PAGE_HEADERS)
    if not request.cookies.get(names.csrf):
        response.set_cookie(
            names.csrf,
            csrf,
            max_age=context_of(request).settings.session_ttl_s,
            path="/",
            secure=names.secure,
            httponly=False,
            samesite="strict",
        )
    return response


async def decide(request: Request) -> Response:
    """POST: the consent decision (session cookie + CSRF): redirect with a code or access_denied."""
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    if any("\x00" in v for v in values.values()):
        raise ValidationError("The form contains a NUL character.")
    csrf_cookie = request.cookies.get(cookies_of(request).csrf, "")
    csrf_field = values.get("csrf_token", "")
    if not csrf_cookie or not csrf_field or not constant_time_equal(csrf_cookie, csrf_field):
        raise Forbidden("The form's CSRF token does not match its cookie; reload the page.")
    principal = await _signed_in(request)
    if principal is None or principal.user_id is None:
        raise Forbidden("Sign in before authorizing a client.")
    params = {k: v for k, v in values.items() if k in AUTHORIZE_FIELDS}
    checked = await _checked(request, params)
    if isinstance(checked, Response):
        return checked
    issuer = context_of(request).settings.oauth_issuer
    if values.get("decision") != "approve":
        denied = checked.redirect(issuer, error="access_denied", error_description="denied")
        return RedirectResponse(denied, 303)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        code = await oauth.issue_code(
            conn, context_of(request).settings, uuid.UUID(principal.user_id), checked
        )
    log.info("oauth_code_issued", client_id=checked.client_id, user_id=principal.user_id)
    return RedirectResponse(checked.redirect(issuer, code=code), 303)


async def _form(request: Request) -> dict[str, str]:
    """The body of a token/revoke request: form-encoded (RFC 6749), JSON accepted too."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if ctype == "application/json":
            data: Any = await read_json(request)
            if not isinstance(data, dict):
                raise oauth.OAuthError(400, "invalid_request", "The body must be an object.")
        else:
            data = dict((await request.form()).items())
    except ApiError as exc:
        raise oauth.OAuthError(400, "invalid_request", exc.message) from None
    values = {str(k): v for k, v in data.items() if isinstance(v, str)}
    if any("\x00" in v or len(v) > 4096 for v in values.values()):
        raise oauth.OAuthError(400, "invalid_request", "A parameter is too long or holds NUL.")
    return values


async def token(request: Request) -> Response:
    """The token endpoint: authorization_code (+ code_verifier) and refresh_token (rotating)."""
    ctx = context_of(request)
    try:
        form = await _form(request)
        grant_type = form.get("grant_type")
        async with ctx.pool.acquire() as conn, conn.transaction():
            if grant_type == "authorization_code":
                out = await oauth_tokens.exchange_code(
                    conn, ctx.keystore, ctx.settings, form, client_source(request)
                )
            elif grant_type == "refresh_token":
                out = await oauth_tokens.refresh(conn, ctx.keystore, ctx.settings, form)
            else:
                raise oauth.OAuthError(
                    400,
                    "unsupported_grant_type",
                    "grant_type must be authorization_code or refresh_token",
                    {"grant_type": "must be authorization_code or refresh_token"},
                )
    except oauth.OAuthError as exc:
        return exc.response()
    if out is None:  # a replayed code or refresh token: the grant was ended (committed above)
        log.warning("oauth_replay_refused", grant_type=grant_type)
        return oauth.invalid_grant("The code or refresh token was used before.").response()
    return JSONResponse(out, headers=oauth.NO_STORE)


async def revoke(request: Request) -> Response:
    """RFC 7009 revocation of a refresh or access token (ends the whole grant)."""
    try:
        form = await _form(request)
        async with context_of(request).pool.acquire() as conn, conn.transaction():
            await oauth_tokens.revoke(
                conn, context_of(request).keystore, context_of(request).settings, form
            )
    except oauth.OAuthError as exc:
        return exc.response()
    return JSONResponse({}, headers=oauth.NO_STORE)


routes = [
    Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
    Route("/oauth/register", register, methods=["POST"]),
    Route("/oauth/authorize", authorize, methods=["GET"]),
    Route("/oauth/authorize", decide, methods=["POST"]),
    Route("/oauth/token", token, methods=["POST"]),
    Route("/oauth/revoke", revoke, methods=["POST"]),
]
