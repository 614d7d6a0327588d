"""Response views of auth rows: users, orgs, members, teams, grants, keys and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson


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
