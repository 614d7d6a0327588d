"""SQL that gathers what a principal holds: org roles, teams and grants."""

from __future__ import annotations

import uuid

import asyncpg


async def user_orgs(conn: asyncpg.Connection, user_id: uuid.UUID) -> list[asyncpg.Record]:
    """The user's active memberships in active orgs."""
    return await conn.fetch(
        "SELECT o.id, o.slug, m.role FROM auth.memberships m JOIN auth.orgs o ON o.id = m.org_id"
        " WHERE m.user_id = $1 AND m.status = 'active' AND o.status = 'active'"
        " ORDER BY m.created_at",
        user_id,
    )


async def user_teams(conn: asyncpg.Connection, user_id: uuid.UUID) -> list[asyncpg.Record]:
    """The user's teams in active orgs."""
    return await conn.fetch(
        "SELECT t.id, t.name FROM auth.team_members tm JOIN auth.teams t ON t.id = tm.team_id"
        " JOIN auth.orgs o ON o.id = t.org_id WHERE tm.user_id = $1 AND o.status = 'active'"
        " ORDER BY t.name",
        user_id,
    )


async def team_grants(conn: asyncpg.Connection, team_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """The grants of the listed teams."""
    return await conn.fetch(
        "SELECT t.name AS team, g.server, g.permissions, g.tools FROM auth.grants g"
        " JOIN auth.teams t ON t.id = g.team_id WHERE g.team_id = ANY($1)"
        " ORDER BY t.name, g.server",
        team_ids,
    )
