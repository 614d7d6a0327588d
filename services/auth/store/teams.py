"""SQL for auth.teams, auth.team_members and auth.grants."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from libs.common.pagination import ListQuery
from libs.common.sql import Where, assignments, fetch_page

COLUMNS = (
    "t.id, t.org_id, t.parent_id, t.name, t.description, t.created_at, t.updated_at,"
    " o.slug AS org_slug"
)
SORTS = ("created_at", "name")
GRANT_COLUMNS = (
    "g.id, g.team_id, g.server, g.server_id, g.permissions, g.tools, g.created_at, g.updated_at"
)


async def insert(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    name: str,
    description: str,
    parent_id: uuid.UUID | None,
) -> uuid.UUID:
    """Create a team; UniqueViolationError when the name is taken."""
    return await conn.fetchval(
        "INSERT INTO auth.teams (id, org_id, name, description, parent_id)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING id",
        uuid.uuid4(),
        org_id,
        name,
        description,
        parent_id,
    )


async def get(conn: asyncpg.Connection, ref: str) -> asyncpg.Record | None:
    """A team by id or name."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM auth.teams t JOIN auth.orgs o ON o.id = t.org_id"
        " WHERE t.id::text = $1 OR t.name = $1",
        ref,
    )


async def list_teams(
    conn: asyncpg.Connection, query: ListQuery, orgs: list[uuid.UUID] | None
) -> tuple[list, int]:
    """A page of teams, optionally only in `orgs`, with q and org filters."""
    w = Where()
    w.add("o.status <> 'deleted'")
    if orgs is not None:
        w.add("t.org_id = ANY({})", orgs)
    if "org" in query.filters:
        w.add("(o.id::text = {0} OR o.slug = {0})", query.filters["org"])
    w.search(("t.name", "t.description"), query.q)
    source = "auth.teams t JOIN auth.orgs o ON o.id = t.org_id"
    return await fetch_page(conn, COLUMNS, source, w, query, f"t.{query.order_sql}, t.id")


async def update(conn: asyncpg.Connection, team_id: uuid.UUID, fields: dict[str, Any]) -> None:
    """Set name, description and/or parent."""
    sets, values = assignments(fields, ("name", "description", "parent_id"))
    await conn.execute(f"UPDATE auth.teams SET {sets} WHERE id = $1", team_id, *values)


async def delete(conn: asyncpg.Connection, team_id: uuid.UUID) -> None:
    """Delete a team with its members and grants."""
    await conn.execute("DELETE FROM auth.teams WHERE id = $1", team_id)


async def list_members(conn: asyncpg.Connection, team_id: uuid.UUID) -> list[asyncpg.Record]:
    """A team's members with their names."""
    return await conn.fetch(
        "SELECT tm.user_id, tm.role, tm.created_at, u.username, u.email, u.display_name"
        " FROM auth.team_members tm JOIN auth.users u ON u.id = tm.user_id"
        " WHERE tm.team_id = $1 ORDER BY tm.created_at, u.username",
        team_id,
    )


async def upsert_member(
    conn: asyncpg.Connection, team_id: uuid.UUID, user_id: uuid.UUID, role: str
) -> None:
    """Add a member or change their role."""
    await conn.execute(
        "INSERT INTO auth.team_members (team_id, user_id, role) VALUES ($1, $2, $3)"
        " ON CONFLICT (team_id, user_id) DO UPDATE SET role = $3",
        team_id,
        user_id,
        role,
    )


async def member_role(
    conn: asyncpg.Connection, team_id: uuid.UUID, user_id: uuid.UUID
) -> str | None:
    """A user's role in a team."""
    return await conn.fetchval(
        "SELECT role FROM auth.team_members WHERE team_id = $1 AND user_id = $2", team_id, user_id
    )


async def delete_member(conn: asyncpg.Connection, team_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Remove a member; False when they were not one."""
    done = await conn.execute(
        "DELETE FROM auth.team_members WHERE team_id = $1 AND user_id = $2", team_id, user_id
    )
    return done != "DELETE 0"


async def list_grants(conn: asyncpg.Connection, team_id: uuid.UUID) -> list[asyncpg.Record]:
    """A team's grants."""
    return await conn.fetch(
        f"SELECT {GRANT_COLUMNS} FROM auth.grants g WHERE g.team_id = $1 ORDER BY g.server",
        team_id,
    )


async def upsert_grant(
    conn: asyncpg.Connection,
    team_id: uuid.UUID,
    server: str,
    server_id: uuid.UUID,
    permissions: list[str],
    tools: list[str] | None,
) -> asyncpg.Record:
    """Set a team's permissions on a server (replacing earlier ones), bound to its id."""
    return await conn.fetchrow(
        "INSERT INTO auth.grants AS g (id, team_id, server, server_id, permissions, tools)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (team_id, server) DO UPDATE SET"
        f" server_id = $4, permissions = $5, tools = $6, updated_at = now()"
        f" RETURNING {GRANT_COLUMNS}",
        uuid.uuid4(),
        team_id,
        server,
        server_id,
        permissions,
        tools,
    )


async def delete_grant(
    conn: asyncpg.Connection, team_id: uuid.UUID, ref: str
) -> asyncpg.Record | None:
    """Remove a grant by its id, or its server's name or id."""
    return await conn.fetchrow(
        "DELETE FROM auth.grants g WHERE g.team_id = $1"
        " AND (g.id::text = $2 OR g.server = $2 OR g.server_id::text = $2)"
        f" RETURNING {GRANT_COLUMNS}",
        team_id,
        ref,
    )


async def ancestors(conn: asyncpg.Connection, team_id: uuid.UUID) -> list[uuid.UUID]:
    """The team's parent, grandparent, … (bounded, so an existing cycle cannot loop)."""
    rows = await conn.fetch(
        "WITH RECURSIVE up (id, depth) AS (SELECT parent_id, 1 FROM auth.teams WHERE id = $1"
        " UNION ALL SELECT t.parent_id, u.depth + 1 FROM up u JOIN auth.teams t ON t.id = u.id"
        " WHERE u.depth < 64) SELECT id FROM up WHERE id IS NOT NULL",
        team_id,
    )
    return [r["id"] for r in rows]


async def lock_hierarchy(conn: asyncpg.Connection, org_id: uuid.UUID) -> None:
    """Serialise re-parenting within an org, so two concurrent moves cannot close a cycle."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('auth.team_parents'), hashtext($1))", str(org_id)
    )


async def list_unbound_grants(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Grants stored before they were bound to server ids, with their team's org."""
    return await conn.fetch(
        "SELECT g.id, g.server, t.org_id, t.name AS team FROM auth.grants g"
        " JOIN auth.teams t ON t.id = g.team_id WHERE g.server_id IS NULL ORDER BY t.org_id"
    )


async def bind_grant(
    conn: asyncpg.Connection, grant_id: uuid.UUID, server_id: uuid.UUID
) -> asyncpg.Record | None:
    """Bind an unbound grant to its server's id (None when it was bound meanwhile)."""
    return await conn.fetchrow(
        f"UPDATE auth.grants g SET server_id = $2, updated_at = now()"
        f" WHERE g.id = $1 AND g.server_id IS NULL RETURNING {GRANT_COLUMNS}",
        grant_id,
        server_id,
    )
