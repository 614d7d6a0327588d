"""Request bodies of credentials: API keys, service tokens and OAuth client registrations."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from services.auth.schemas import Body, Permission

FORBIDDEN_SCHEMES = {"javascript", "data", "file", "vbscript", "about", "blob", "ftp", "ws", "wss"}


LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}


SCOPE_RE = r"^(read|write|ci|admin|execute|\*):(org|server|team|\*):[A-Za-z0-9_.\-*]+$"


class KeyIn(Body):
    """POST /keys."""

    name: str = Field(min_length=1, max_length=200)
    teams: list[str] | None = Field(None, max_length=100)
    expires_at: datetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        """Expiry must be a future, zoned time."""
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("must include a time zone")
            if value <= datetime.now(value.tzinfo):
                raise ValueError("must be in the future")
        return value


class TokenGrantIn(Body):
    """A server grant carried by a service token (`grants` of POST /orgs/{org}/tokens)."""

    server: str = Field(min_length=1, max_length=200)
    permissions: list[Permission] = Field(min_length=1, max_length=3)
    tools: list[str] | None = Field(None, max_length=1000)


class TokenIn(Body):
    """POST /orgs/{org}/tokens."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    scopes: list[str] = Field(min_length=1, max_length=50)
    expires_in_days: int | None = Field(None, ge=1, le=3650)
    grants: list[TokenGrantIn] | None = Field(None, max_length=100)

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        """Each scope is verb:kind:name."""
        for scope in value:
            if not re.match(SCOPE_RE, scope):
                raise ValueError(f"{scope!r} is not a scope like read:org:<slug>")
        return value


def redirect_uri_problem(uri: str) -> str | None:
    """Why a redirect URI may not be registered (None when it may).

    Allowed are https, loopback http, or a private-use scheme (RFC 8252); never a fragment."""
    if len(uri) > 2000 or any(c.isspace() for c in uri):
        return "must be a URL of at most 2000 characters without spaces"
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "is not a URL"
    scheme = parts.scheme.lower()
    if not re.match(r"^[a-z][a-z0-9+.\-]*$", scheme):
        return "must be an absolute URL"
    if parts.fragment or "#" in uri:
        return "must not contain a fragment"
    if scheme in FORBIDDEN_SCHEMES:
        return f"must not use the {scheme} scheme"
    if scheme == "https":
        return None if parts.hostname else "must name a host"
    if scheme == "http":
        if (parts.hostname or "") in LOOPBACK:
            return None
        return "http is allowed only for loopback hosts (localhost, 127.0.0.1, [::1])"
    return None  # a native app's private-use scheme


class ClientIn(Body):
    """POST /oauth/register (RFC 7591): a public client that uses PKCE."""

    redirect_uris: list[str] = Field(min_length=1, max_length=10)
    client_name: str = Field("", max_length=200)
    grant_types: list[Literal["authorization_code", "refresh_token"]] = Field(
        default_factory=lambda: ["authorization_code", "refresh_token"], min_length=1
    )
    response_types: list[Literal["code"]] = Field(default_factory=lambda: ["code"])
    token_endpoint_auth_method: Literal["none"] = "none"
    scope: str | None = Field(None, max_length=500)
    client_uri: str | None = Field(None, max_length=2000)
    logo_uri: str | None = Field(None, max_length=2000)
    tos_uri: str | None = Field(None, max_length=2000)
    policy_uri: str | None = Field(None, max_length=2000)
    software_id: str | None = Field(None, max_length=200)
    software_version: str | None = Field(None, max_length=200)
    contacts: list[str] | None = Field(None, max_length=10)

    @field_validator("redirect_uris")
    @classmethod
    def _redirects(cls, value: list[str]) -> list[str]:
        """Each redirect URI is https, loopback http or a private-use scheme, without fragment."""
        for uri in value:
            problem = redirect_uri_problem(uri)
            if problem is not None:
                raise ValueError(f"{uri[:100]!r} {problem}")
        return list(dict.fromkeys(value))
