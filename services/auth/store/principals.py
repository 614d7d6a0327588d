"""SQL that gathers what a principal holds: org roles, teams and grants."""

from __future__ import annotations

import uuid

import asyncpg

# parent chains longer than this are cut (cycles are refused on update; this is the backstop)
MAX_TEAM_DEPTH = 32


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
        "SELECT t.id, t.name, t.org_id FROM auth.team_members tm"
        " JOIN auth.teams t ON t.id = tm.team_id"
        " JOIN auth.orgs o ON o.id = t.org_id WHERE tm.user_id = $1 AND o.status = 'active'"
        " ORDER BY t.name",
        user_id,
    )


async def team_grants(conn: asyncpg.Connection, team_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """The bound grants of the listed teams and of their ancestors (parent teams).

    Each is labelled with the listed team it reaches the holder through and the org of the
    team holding it; the depth bound stops a cycle. Unbound grants (a name no server of the org
    answers to) give nothing and are left out."""
    return await conn.fetch(
        "WITH RECURSIVE chain (origin, team_id, depth) AS ("
        " SELECT id, id, 0 FROM auth.teams WHERE id = ANY($1)"
        " UNION ALL SELECT c.origin, t.parent_id, c.depth + 1 FROM chain c"
        " JOIN auth.teams t ON t.id = c.team_id"
        f" WHERE t.parent_id IS NOT NULL AND c.depth < {MAX_TEAM_DEPTH})"
        " SELECT DISTINCT o.name AS team, g.server, g.server_id, h.org_id AS org, g.permissions,"
        " g.tools FROM chain c JOIN auth.grants g ON g.team_id = c.team_id"
        " JOIN auth.teams o ON o.id = c.origin JOIN auth.teams h ON h.id = g.team_id"
        " WHERE g.server_id IS NOT NULL AND h.org_id = o.org_id ORDER BY 1, 2",
        team_ids,
    )


async def org_grants(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every bound grant held by a team of the org (what the org owns, for service tokens)."""
    return await conn.fetch(
        "SELECT t.name AS team, g.server, g.server_id, t.org_id AS org, g.permissions, g.tools"
        " FROM auth.grants g JOIN auth.teams t ON t.id = g.team_id"
        " WHERE t.org_id = $1 AND g.server_id IS NOT NULL",
        org_id,
    )
