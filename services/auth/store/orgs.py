"""SQL for auth.orgs and auth.memberships."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from libs.common.pagination import ListQuery
from libs.common.sql import Where, assignments, fetch_page

COLUMNS = "id, slug, name, display_name, plan, status, created_at, updated_at"
SORTS = ("created_at", "slug", "name", "plan", "status")
UPDATABLE = ("name", "display_name", "plan")
MEMBER_COLUMNS = (
    "m.id, m.org_id, m.user_id, m.role, m.status, m.invited_email, m.invite_expires_at,"
    " m.created_at, u.username, u.email, u.display_name"
)


async def insert(
    conn: asyncpg.Connection, slug: str, name: str, display_name: str, plan: str
) -> asyncpg.Record:
    """Create an org; UniqueViolationError when the slug is taken."""
    return await conn.fetchrow(
        f"INSERT INTO auth.orgs (id, slug, name, display_name, plan) VALUES ($1, $2, $3, $4, $5)"
        f" RETURNING {COLUMNS}",
        uuid.uuid4(),
        slug,
        name,
        display_name,
        plan,
    )


async def get(conn: asyncpg.Connection, ref: str) -> asyncpg.Record | None:
    """An org (not deleted) by id or slug."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM auth.orgs WHERE status <> 'deleted'"
        " AND (id::text = $1 OR slug = $1)",
        ref,
    )


async def list_orgs(
    conn: asyncpg.Connection, query: ListQuery, only: list[uuid.UUID] | None
) -> tuple[list, int]:
    """A page of orgs (optionally only those in `only`), with q and status/plan filters."""
    w = Where()
    if "status" in query.filters:
        w.add("status = {}", query.filters["status"])
    else:
        w.add("status <> 'deleted'")
    if "plan" in query.filters:
        w.add("plan = {}", query.filters["plan"])
    w.search(("slug", "name", "display_name"), query.q)
    if only is not None:
        w.add("id = ANY({})", only)
    return await fetch_page(conn, COLUMNS, "auth.orgs", w, query, f"{query.order_sql}, id")


async def update(
    conn: asyncpg.Connection, org_id: uuid.UUID, fields: dict[str, Any]
) -> asyncpg.Record:
    """Set the given updatable fields."""
    sets, values = assignments(fields, UPDATABLE)
    return await conn.fetchrow(
        f"UPDATE auth.orgs SET {sets} WHERE id = $1 RETURNING {COLUMNS}", org_id, *values
    )


async def set_status(conn: asyncpg.Connection, org_id: uuid.UUID, status: str) -> asyncpg.Record:
    """Set an org's status."""
    return await conn.fetchrow(
        f"UPDATE auth.orgs SET status = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
        org_id,
        status,
    )


async def list_members(conn: asyncpg.Connection, org_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every membership (active and pending) of an org."""
    return await conn.fetch(
        f"SELECT {MEMBER_COLUMNS} FROM auth.memberships m LEFT JOIN auth.users u"
        " ON u.id = m.user_id WHERE m.org_id = $1 ORDER BY m.created_at, m.id",
        org_id,
    )


async def get_member(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID
) -> asyncpg.Record | None:
    """One user's membership of an org."""
    return await conn.fetchrow(
        f"SELECT {MEMBER_COLUMNS} FROM auth.memberships m LEFT JOIN auth.users u"
        " ON u.id = m.user_id WHERE m.org_id = $1 AND m.user_id = $2",
        org_id,
        user_id,
    )


async def upsert_member(
    conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID, role: str
) -> bool:
    """Make `user_id` an active member with `role`; True when the membership is new."""
    return await conn.fetchval(
        "INSERT INTO auth.memberships (id, org_id, user_id, role) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (org_id, user_id) WHERE user_id IS NOT NULL DO UPDATE SET role = $4,"
        " status = 'active', updated_at = now() RETURNING (xmax = 0)",
        uuid.uuid4(),
        org_id,
        user_id,
        role,
    )


async def delete_member(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Remove a membership (and the user's team memberships in the org)."""
    await conn.execute(
        "DELETE FROM auth.team_members tm USING auth.teams t WHERE tm.team_id = t.id"
        " AND t.org_id = $1 AND tm.user_id = $2",
        org_id,
        user_id,
    )
    done = await conn.execute(
        "DELETE FROM auth.memberships WHERE org_id = $1 AND user_id = $2", org_id, user_id
    )
    return done != "DELETE 0"


async def insert_invite(
    conn: asyncpg.Connection,
    org_id: uuid.UUID,
    email: str,
    role: str,
    invite_hash: str,
    ttl_s: int,
) -> asyncpg.Record:
    """A pending membership redeemable with the invite token."""
    return await conn.fetchrow(
        "INSERT INTO auth.memberships (id, org_id, role, status, invited_email, invite_hash,"
        " invite_expires_at) VALUES ($1, $2, $3, 'pending', $4, $5,"
        " now() + make_interval(secs => $6))"
        " RETURNING id, org_id, role, status, invited_email, invite_expires_at, created_at",
        uuid.uuid4(),
        org_id,
        role,
        email,
        invite_hash,
        float(ttl_s),
    )


async def pending_invite(conn: asyncpg.Connection, invite_hash: str) -> asyncpg.Record | None:
    """A live invite (id, org_id, role) by its hash, locked; None when unknown or expired."""
    return await conn.fetchrow(
        "SELECT id, org_id, role FROM auth.memberships WHERE invite_hash = $1"
        " AND status = 'pending' AND invite_expires_at > now() FOR UPDATE",
        invite_hash,
    )


async def accept_invite(
    conn: asyncpg.Connection, invite_hash: str, user_id: uuid.UUID
) -> asyncpg.Record | None:
    """Turn a live invite into the user's membership (None when unknown or expired)."""
    row = await pending_invite(conn, invite_hash)
    if row is None:
        return None
    await conn.execute("DELETE FROM auth.memberships WHERE id = $1", row["id"])
    await upsert_member(conn, row["org_id"], user_id, row["role"])
    return row


async def role_of(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> str | None:
    """The active role of a user in an org."""
    return await conn.fetchval(
        "SELECT role FROM auth.memberships WHERE org_id = $1 AND user_id = $2"
        " AND status = 'active'",
        org_id,
        user_id,
    )


async def lock_for_seats(conn: asyncpg.Connection, org_id: uuid.UUID) -> asyncpg.Record | None:
    """The org row, locked until the caller's transaction ends (seat checks do not race)."""
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM auth.orgs WHERE id = $1 FOR UPDATE", org_id)


async def count_active_members(conn: asyncpg.Connection, org_id: uuid.UUID) -> int:
    """Active memberships of an org: its seats in use (pending invites take none)."""
    return await conn.fetchval(
        "SELECT count(*) FROM auth.memberships WHERE org_id = $1 AND status = 'active'", org_id
    )
