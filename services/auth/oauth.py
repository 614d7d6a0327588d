"""OAuth 2.1 for MCP clients: PKCE, redirect URIs, authorization codes (tokens: oauth_tokens.py).

The MCP authorization spec: public clients register themselves (RFC 7591), use the authorization
code grant with PKCE S256, name the MCP server in `resource` (RFC 8707), and get access tokens whose
audience is that resource. A grant is a session of kind `oauth`; its refresh tokens rotate like the
others (reuse ends the grant), and its JWTs carry the session as `sid`, so ending the session
revokes everything the client holds.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import asyncpg
import orjson
from starlette.responses import JSONResponse

from libs.common.authn import canonical_resource, hash_token
from services.auth.settings import AuthSettings
from services.auth.store import oauth as store

CLIENT_PREFIX = "sbc_"
CODE_PREFIX = "sbo_"
SCOPES = ("mcp",)
GRANT_TYPES = ("authorization_code", "refresh_token")
VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
CHALLENGE_RE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An OAuth error answered as RFC 6749 says: `{"error", "error_description"}` (+ details)."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.fields = fields
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """The JSON error response (never cached)."""
        body: dict[str, Any] = {"error": self.error, "error_description": self.description}
        if self.fields:
            body["details"] = {"fields": self.fields}
        return JSONResponse(body, self.status, headers={**NO_STORE, **self.headers})


class RedirectError(Exception):
    """An authorization request error reported to the client at its (validated) redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def invalid_grant(description: str) -> OAuthError:
    """400 invalid_grant: a bad, spent or foreign code or refresh token."""
    return OAuthError(400, "invalid_grant", description)


def invalid_client(description: str) -> OAuthError:
    """401 invalid_client: an unknown client id."""
    return OAuthError(401, "invalid_client", description, headers={"WWW-Authenticate": "Basic"})


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a code verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_client_id() -> str:
    """A client id (public, not a secret)."""
    return CLIENT_PREFIX + secrets.token_urlsafe(18)


def client_view(row: asyncpg.Record) -> dict[str, Any]:
    """The RFC 7591 registration response for a client."""
    raw = row["metadata"]
    meta = dict(orjson.loads(raw) if isinstance(raw, str) else raw or {})
    return {
        **meta,
        "client_id": row["id"],
        "client_id_issued_at": int(row["created_at"].timestamp()),
        "client_name": row["name"],
        "redirect_uris": list(row["redirect_uris"]),
        "grant_types": list(row["grant_types"]),
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "scope": row["scope"],
    }


def granted_scope(requested: str | None) -> str:
    """The scopes granted: the known ones asked for, else all of them (unknown ones dropped)."""
    asked = [s for s in (requested or "").split() if s in SCOPES]
    return " ".join(dict.fromkeys(asked)) if asked else " ".join(SCOPES)


def resource_for(settings: AuthSettings, requested: str | None) -> str | None:
    """The audience for a requested resource: exactly the gateway's /mcp, else None.

    The audience is /mcp in RFC 8707 canonical form (every /mcp endpoint is that one resource);
    None for anything else, a path under it included, or a URI with a fragment (RFC 8707
    forbids one)."""
    base = canonical_resource(settings.mcp_resource)
    if not requested:
        return base
    if "#" in requested or canonical_resource(requested) != base:
        return None
    return base


@dataclass(frozen=True)
class AuthorizeRequest:
    """A checked authorization request."""

    client_id: str
    client_name: str
    redirect_uri: str
    code_challenge: str
    resource: str
    scope: str
    state: str | None

    def redirect(self, issuer: str, **params: str) -> str:
        """The redirect URI with `params`, `state` and `iss` (RFC 9207) added."""
        extra = {**params, "iss": issuer}
        if self.state is not None:
            extra["state"] = self.state
        sep = "&" if "?" in self.redirect_uri else "?"
        return self.redirect_uri + sep + urlencode(extra)


async def check_client_and_redirect(
    conn: asyncpg.Connection, params: dict[str, str]
) -> tuple[asyncpg.Record, str]:
    """The client and redirect URI of a request; errors are returned as ValueError messages.

    Errors here are never redirected (RFC 6749 4.1.2.1), so they are field messages."""
    fields: dict[str, str] = {}
    client_id = params.get("client_id") or ""
    client = await store.get_client(conn, client_id) if 0 < len(client_id) <= 200 else None
    if client is None:
        fields["client_id"] = "unknown client" if client_id else "required"
        raise ValueError(fields)
    uri = params.get("redirect_uri")
    registered = list(client["redirect_uris"])
    if not uri:
        if len(registered) != 1:
            raise ValueError({"redirect_uri": "required (the client registered several)"})
        uri = registered[0]
    if uri not in registered:
        raise ValueError({"redirect_uri": "does not match a registered redirect URI"})
    return client, uri


def check_authorize(
    settings: AuthSettings, client: asyncpg.Record, redirect_uri: str, params: dict[str, str]
) -> AuthorizeRequest:
    """The rest of an authorization request; problems raise RedirectError."""
    if params.get("response_type") != "code":
        raise RedirectError("unsupported_response_type", "response_type must be code")
    if "authorization_code" not in client["grant_types"]:
        raise RedirectError("unauthorized_client", "the client may not use authorization codes")
    challenge = params.get("code_challenge") or ""
    if not challenge:
        raise RedirectError("invalid_request", "PKCE is required: send code_challenge (S256)")
    if params.get("code_challenge_method") != "S256":
        raise RedirectError("invalid_request", "code_challenge_method must be S256")
    if not CHALLENGE_RE.match(challenge):
        raise RedirectError("invalid_request", "code_challenge must be 43 base64url characters")
    resource = resource_for(settings, params.get("resource"))
    if resource is None:
        raise RedirectError("invalid_target", f"resource must be {settings.mcp_resource}")
    state = params.get("state")
    if state is not None and len(state) > 2000:
        raise RedirectError("invalid_request", "state is too long")
    return AuthorizeRequest(
        client_id=client["id"],
        client_name=client["name"] or client["id"],
        redirect_uri=redirect_uri,
        code_challenge=challenge,
        resource=resource,
        scope=granted_scope(params.get("scope")),
        state=state,
    )


async def issue_code(
    conn: asyncpg.Connection, settings: AuthSettings, user_id: uuid.UUID, req: AuthorizeRequest
) -> str:
    """A new single-use authorization code for the approved request."""
    code = CODE_PREFIX + secrets.token_urlsafe(32)
    await store.delete_expired_codes(conn)
    await store.insert_code(
        conn,
        hash_token(code),
        req.client_id,
        user_id,
        req.redirect_uri,
        req.code_challenge,
        req.resource,
        req.scope,
        settings.oauth_code_ttl_s,
    )
    return code
