"""Request bodies of orgs and teams: the org, its members and invites, teams and their grants."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from services.auth.schemas import NAME_RE, Body, Permission, Role, check_email


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

    _check_email = field_validator("email")(check_email)

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
