"""Request models (validated with field errors) and response views of auth records."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import asyncpg
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_RE = r"^[a-z0-9][a-z0-9_.\-]{0,62}$"
USERNAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{1,63}$"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Role = Literal["owner", "admin", "member", "viewer"]
Permission = Literal["read", "execute", "write"]
FORBIDDEN_SCHEMES = {"javascript", "data", "file", "vbscript", "about", "blob", "ftp", "ws", "wss"}
LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]"}
SCOPE_RE = r"^(read|write|ci|admin|execute|\*):(org|server|team|\*):[A-Za-z0-9_.\-*]+$"


class Body(BaseModel):
    """Base of request bodies: unknown fields are ignored (seed clients send extras)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        """Postgres text cannot hold NUL characters: refuse them as invalid input."""
        if _has_nul(data):
            raise ValueError("text must not contain NUL characters")
        return data


def _has_nul(value: Any, depth: int = 0) -> bool:
    """True when a NUL character is anywhere in `value`."""
    if isinstance(value, str):
        return "\x00" in value
    if depth > 5:
        return False
    if isinstance(value, dict):
        return any(_has_nul(k, depth + 1) or _has_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v, depth + 1) for v in value)
    return False


def _email(value: str | None) -> str | None:
    """Check an optional email address."""
    if value is not None and not EMAIL_RE.match(value):
        raise ValueError("must be an email address")
    return value.lower() if value else value


class SetupIn(Body):
    """POST /auth/setup."""

    username: str = Field(pattern=USERNAME_RE)
    password: str = Field(min_length=1, max_length=1024)
    email: str | None = None
    display_name: str = Field("", max_length=200)

    _check_email = field_validator("email")(_email)


class LoginIn(Body):
    """POST /auth/login: username or email, password, and the TOTP code when MFA is on."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)

    username: str | None = Field(None, min_length=1, max_length=320)
    email: str | None = Field(None, min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    mfa_code: str | None = Field(None, max_length=16)

    @model_validator(mode="after")
    def _one_login(self) -> LoginIn:
        """Username or email is required."""
        if not self.username and not self.email:
            raise ValueError("username or email is required")
        return self

    @property
    def login(self) -> str:
        """What identifies the user."""
        return (self.username or self.email or "").strip()


class RefreshIn(Body):
    """POST /auth/refresh (also accepts the seeds' refreshToken)."""

    refresh_token: str = Field(min_length=1, max_length=512, alias="refresh_token")

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        """Accept refreshToken."""
        if isinstance(data, dict) and "refresh_token" not in data and "refreshToken" in data:
            return {**data, "refresh_token": data["refreshToken"]}
        return data


class LogoutIn(Body):
    """POST /auth/logout: optionally the refresh token whose family ends."""

    refresh_token: str | None = Field(None, max_length=512)


class ChangePasswordIn(Body):
    """POST /auth/change-password."""

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        """Accept the seeds' oldPassword/newPassword."""
        if isinstance(data, dict):
            data = dict(data)
            data.setdefault("current_password", data.get("oldPassword") or data.get("old_password"))
            data.setdefault("new_password", data.get("newPassword"))
        return data


class MfaCodeIn(Body):
    """A TOTP code."""

    code: str = Field(pattern=r"^\d{6}$")


class UserIn(Body):
    """POST /users."""

    username: str = Field(pattern=USERNAME_RE)
    password: str | None = Field(None, min_length=1, max_length=1024)
    email: str | None = None
    display_name: str = Field("", max_length=200)
    platform_role: Literal["user", "platform_admin"] = "user"

    _check_email = field_validator("email")(_email)

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        """The seeds' role: admin → platform_admin."""
        if isinstance(data, dict) and "platform_role" not in data and "role" in data:
            role = data["role"]
            return {**data, "platform_role": "platform_admin" if role == "admin" else role}
        return data


class UserUpdate(Body):
    """PUT/PATCH /users/{user}."""

    email: str | None = None
    display_name: str | None = Field(None, max_length=200)
    plan: str | None = Field(None, pattern=r"^[a-z0-9_\-]{1,32}$")

    _check_email = field_validator("email")(_email)


class RoleIn(Body):
    """PATCH /users/{user}/role."""

    role: Literal["user", "platform_admin"]


class PlanIn(Body):
    """PATCH …/plan."""

    plan: str = Field(pattern=r"^[a-z0-9_\-]{1,32}$")

    @field_validator("plan", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        """Plans are lower case (the seeds send ENTERPRISE)."""
        return value.lower() if isinstance(value, str) else value


class BulkIn(Body):
    """POST /users/bulk/suspend|activate."""

    user_ids: list[str] = Field(min_length=1, max_length=500)

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        """Accept ids / userIds."""
        if isinstance(data, dict) and "user_ids" not in data:
            return {**data, "user_ids": data.get("ids") or data.get("userIds")}
        return data


class OrgIn(Body):
    """POST /orgs."""

    slug: str = Field(pattern=NAME_RE)
    name: str = Field(min_length=1, max_length=200)
    display_name: str = Field("", max_length=200)
    plan: str = Field("free", pattern=r"^[a-z0-9_\-]{1,32}$")

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """The slug defaults to the name, the name to the slug."""
        if isinstance(data, dict):
            data = dict(data)
            if not data.get("slug") and isinstance(data.get("name"), str):
                data["slug"] = data["name"].lower()
            if not data.get("name") and data.get("slug"):
                data["name"] = data["slug"]
            if isinstance(data.get("plan"), str):
                data["plan"] = data["plan"].lower()
        return data


class OrgUpdate(Body):
    """PUT/PATCH /orgs/{org}."""

    name: str | None = Field(None, min_length=1, max_length=200)
    display_name: str | None = Field(None, max_length=200)


class MemberIn(Body):
    """POST /orgs/{org}/members and team members: a user (id or username) and a role."""

    user: str = Field(min_length=1, max_length=200)
    role: Role = "member"

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        """Accept user_id / userId / username; roles in any case."""
        if isinstance(data, dict):
            data = dict(data)
            if "user" not in data:
                data["user"] = data.get("user_id") or data.get("userId") or data.get("username")
            if isinstance(data.get("role"), str):
                data["role"] = data["role"].lower()
        return data


class MemberRoleIn(Body):
    """PATCH …/members/{user}(/role)."""

    role: Role

    @field_validator("role", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        """Roles in any case."""
        return value.lower() if isinstance(value, str) else value


class InviteIn(Body):
    """POST /orgs/{org}/users/invite."""

    email: str
    role: Role = "member"

    _check_email = field_validator("email")(_email)

    @field_validator("role", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        """Roles in any case (the seed sends MEMBER)."""
        return value.lower() if isinstance(value, str) else value


class InviteAcceptIn(Body):
    """POST /auth/invites/accept."""

    token: str = Field(min_length=8, max_length=256)


class TeamIn(Body):
    """POST /teams (or /orgs/{org}/areas, where org comes from the path)."""

    name: str = Field(pattern=NAME_RE)
    org: str | None = Field(None, min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    parent: str | None = Field(None, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        """Accept slug (areas) and parentGroup (groups)."""
        if isinstance(data, dict):
            data = dict(data)
            if data.get("slug") and not data.get("name"):
                data["name"] = data["slug"]
            elif data.get("slug"):
                data["name"] = data["slug"]
            if "parent" not in data:
                data["parent"] = data.get("parentGroup") or data.get("parent_id")
        return data


class TeamUpdate(Body):
    """PUT/PATCH /teams/{team}."""

    name: str | None = Field(None, pattern=NAME_RE)
    description: str | None = Field(None, max_length=2000)
    parent: str | None = Field(None, max_length=200)


class GrantIn(Body):
    """POST /teams/{team}/grants: permissions on a server, optionally only on listed tools."""

    server: str = Field(min_length=1, max_length=200)
    permissions: list[Permission] = Field(min_length=1, max_length=3)
    tools: list[str] | None = Field(None, max_length=1000)

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, data: Any) -> Any:
        """Accept the seed's serverId."""
        if isinstance(data, dict) and "server" not in data:
            return {**data, "server": data.get("serverId") or data.get("server_name")}
        return data


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
    """Why a redirect URI may not be registered (None when it may): https, loopback http, or a
    private-use scheme (RFC 8252); never a fragment."""
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


# ---- views ---------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    """RFC 3339 UTC."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def user_view(row: asyncpg.Record) -> dict[str, Any]:
    """A user as the API shows it (no hashes, no MFA secret)."""
    return {
        "id": str(row["id"]),
        "username": row["username"],
        "email": row["email"],
        "display_name": row["display_name"],
        "platform_role": row["platform_role"],
        "role": "admin" if row["platform_role"] == "platform_admin" else "user",
        "status": row["status"],
        "plan": row["plan"],
        "mfa_enabled": row["mfa_enabled"],
        "last_login_at": _iso(row["last_login_at"]),
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


def org_view(row: asyncpg.Record) -> dict[str, Any]:
    """An org."""
    return {
        "id": str(row["id"]),
        "slug": row["slug"],
        "name": row["name"],
        "display_name": row["display_name"],
        "plan": row["plan"],
        "status": row["status"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


def member_view(row: asyncpg.Record) -> dict[str, Any]:
    """An org membership (or pending invite)."""
    return {
        "id": str(row["id"]),
        "org_id": str(row["org_id"]),
        "user_id": str(row["user_id"]) if row["user_id"] else None,
        "username": row["username"],
        "email": row["email"] or row["invited_email"],
        "role": row["role"],
        "status": row["status"],
        "created_at": _iso(row["created_at"]),
    }


def team_view(row: asyncpg.Record) -> dict[str, Any]:
    """A team."""
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "slug": row["name"],
        "org_id": str(row["org_id"]),
        "org": row["org_slug"],
        "parent_id": str(row["parent_id"]) if row["parent_id"] else None,
        "description": row["description"],
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


def team_member_view(row: asyncpg.Record) -> dict[str, Any]:
    """A team member."""
    return {
        "user_id": str(row["user_id"]),
        "username": row["username"],
        "email": row["email"],
        "display_name": row["display_name"],
        "role": row["role"],
        "created_at": _iso(row["created_at"]),
    }


def grant_view(row: asyncpg.Record, team: str) -> dict[str, Any]:
    """A grant."""
    return {
        "id": str(row["id"]),
        "team": team,
        "server": row["server"],
        "server_id": str(row["server_id"]) if row["server_id"] else None,
        "bound": row["server_id"] is not None,
        "permissions": sorted(row["permissions"]),
        "tools": list(row["tools"]) if row["tools"] is not None else None,
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }


def key_view(row: asyncpg.Record) -> dict[str, Any]:
    """An API key without its secret."""
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "prefix": row["prefix"],
        "teams": list(row["teams"]) if row["teams"] is not None else None,
        "expires_at": _iso(row["expires_at"]),
        "last_used_at": _iso(row["last_used_at"]),
        "revoked_at": _iso(row["revoked_at"]),
        "created_at": _iso(row["created_at"]),
    }


def token_view(row: asyncpg.Record) -> dict[str, Any]:
    """A service token without its secret."""
    return {
        "id": str(row["id"]),
        "org_id": str(row["org_id"]),
        "name": row["name"],
        "description": row["description"],
        "prefix": row["prefix"],
        "scopes": list(row["scopes"]),
        "grants": _json(row["grants"]),
        "expires_at": _iso(row["expires_at"]),
        "last_used_at": _iso(row["last_used_at"]),
        "revoked_at": _iso(row["revoked_at"]),
        "created_at": _iso(row["created_at"]),
    }


def _json(value: Any) -> Any:
    """A jsonb column's value (asyncpg returns it as text without a codec)."""
    return orjson.loads(value) if isinstance(value, str) else value
