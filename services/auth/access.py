"""Who may do what in auth: org and team lookups with the role/scope checks they need."""

from __future__ import annotations

from typing import Any

import asyncpg

from libs.common.authn import ROLE_ORDER, Principal
from libs.common.errors import Forbidden, NotFound
from services.auth.store import orgs, teams

# the org role a token scope stands for
SCOPE_LEVEL = {"read": "viewer", "write": "member", "ci": "viewer", "admin": "admin"}


def org_level(principal: Principal, org: asyncpg.Record) -> str | None:
    """The principal's effective role in `org`: membership, platform admin, or token scope."""
    role = principal.role_in(str(org["id"]))
    best = ROLE_ORDER.index(role) if role else -1
    for verb, level in SCOPE_LEVEL.items():
        if principal.kind != "user" and principal.has_scope(f"{verb}:org:{org['slug']}"):
            best = max(best, ROLE_ORDER.index(level))
    return ROLE_ORDER[best] if best >= 0 else None


def require_org(
    principal: Principal, org: Any, minimum: str, missing: NotFound | None = None
) -> None:
    """`missing` (404) when the principal holds no role in `org`, 403 when it is below `minimum`.

    Another org's objects do not exist for it (docs/TENANCY.md)."""
    level = org_level(principal, org)
    if level is None:
        raise missing or NotFound("Organisation not found.")
    if ROLE_ORDER.index(level) < ROLE_ORDER.index(minimum):
        raise Forbidden(
            f"This needs the {minimum} role in the organisation.",
            details={"org": org["slug"], "required_role": minimum},
        )


async def get_org(conn: asyncpg.Connection, ref: str) -> asyncpg.Record:
    """An org by id or slug, else 404."""
    org = await orgs.get(conn, ref)
    if org is None:
        raise org_missing(ref)
    return org


async def org_for(
    conn: asyncpg.Connection, principal: Principal, ref: str, minimum: str
) -> asyncpg.Record:
    """An org by id or slug in which the principal holds at least `minimum`, else 404 or 403.

    404 also when it holds no role there."""
    org = await get_org(conn, ref)
    require_org(principal, org, minimum, org_missing(ref))
    return org


def org_missing(ref: str) -> NotFound:
    """The 404 of an org that does not exist (or is not the caller's)."""
    return NotFound(f"Organisation {ref!r} not found.", details={"org": ref})


async def get_team(conn: asyncpg.Connection, ref: str) -> asyncpg.Record:
    """A team by id or name, else 404."""
    team = await teams.get(conn, ref)
    if team is None:
        raise team_missing(ref)
    return team


def team_missing(ref: str) -> NotFound:
    """The 404 of a team that does not exist (or is another org's)."""
    return NotFound(f"Team {ref!r} not found.", details={"team": ref})


async def get_team_in_org(
    conn: asyncpg.Connection, org: asyncpg.Record, ref: str
) -> asyncpg.Record:
    """A team of `org` (areas routes), else 404."""
    team = await teams.get(conn, ref)
    if team is None or team["org_id"] != org["id"]:
        raise NotFound(f"Team {ref!r} not found in {org['slug']!r}.", details={"team": ref})
    return team


def team_org_ref(team: asyncpg.Record) -> dict[str, object]:
    """The org fields of a team row, shaped for require_org."""
    return {"id": team["org_id"], "slug": team["org_slug"]}
