"""Request models of accounts and users, and the shared base and field types of every body.

Orgs and teams are in tenancy_schemas.py, credentials in credential_schemas.py, response views
in views.py.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_RE = r"^[a-z0-9][a-z0-9_.\-]{0,62}$"
USERNAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{1,63}$"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Role = Literal["owner", "admin", "member", "viewer"]
Permission = Literal["read", "execute", "write"]


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


def check_email(value: str | None) -> str | None:
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

    _check_email = field_validator("email")(check_email)


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

    _check_email = field_validator("email")(check_email)

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

    _check_email = field_validator("email")(check_email)


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
