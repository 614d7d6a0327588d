"""SQL for registry.policies and registry.policy_approvals, and the catalog facts they judge."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from libs.common.pagination import ListQuery
from libs.common.sql import Where, assignments, fetch_page

COLUMNS = (
    "id, org, name, description, action, target_type, target_value, priority, enabled, version,"
    " created_by, created_at, updated_at"
)
WRITABLE = ("name", "description", "action", "target_type", "target_value", "priority", "enabled")
SORTS = ("priority", "name", "created_at", "updated_at")
FILTERS = ("action", "target_type", "enabled")
# the latest snapshot of each version, with the controls it failed
CERTIFICATION_SQL = (
    "SELECT m.id AS mcp_id, m.name AS mcp, m.license, v.id AS version_id, v.visible_version,"
    " s.global_score, s.grade,"
    " ARRAY(SELECT c.control_id FROM registry.control_results c"
    "  WHERE c.snapshot_id = s.id AND NOT c.passed ORDER BY c.control_id) AS failed_controls"
    " FROM registry.mcp_versions v JOIN registry.mcps m ON m.id = v.mcp_id"
    " LEFT JOIN LATERAL (SELECT * FROM registry.snapshots s WHERE s.version_id = v.id"
    "  ORDER BY s.created_at DESC, s.id LIMIT 1) s ON true"
)


async def list_policies(
    conn: asyncpg.Connection, org: str, query: ListQuery
) -> tuple[list[asyncpg.Record], int]:
    """A page of an org's policies (filters: action, target_type, enabled; q: name)."""
    where = Where()
    where.add("org = {}", org)
    for name in ("action", "target_type"):
        if name in query.filters:
            where.add(f"{name} = {{}}", query.filters[name].upper())
    if "enabled" in query.filters:
        where.add("enabled = {}", query.filters["enabled"].lower() in ("true", "1", "yes"))
    where.search(["name", "description"], query.q)
    return await fetch_page(
        conn, COLUMNS, "registry.policies", where, query, f"{query.order_sql}, name, id"
    )


async def get_policy(conn: asyncpg.Connection, org: str, policy_id: str) -> asyncpg.Record | None:
    """One policy of an org by id (None when absent, another org's or not a uuid)."""
    try:
        pid = uuid.UUID(policy_id)
    except ValueError:
        return None
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM registry.policies WHERE id = $1 AND org = $2", pid, org
    )


async def insert_policy(
    conn: asyncpg.Connection, org: str, fields: dict[str, Any], actor: str
) -> asyncpg.Record:
    """Insert a policy; a taken name surfaces as asyncpg.UniqueViolationError."""
    data = {k: fields[k] for k in WRITABLE if k in fields}
    data.update(id=uuid.uuid4(), org=org, created_by=actor)
    cols = list(data)
    marks = ", ".join(f"${i}" for i in range(1, len(cols) + 1))
    return await conn.fetchrow(
        f"INSERT INTO registry.policies ({', '.join(cols)}) VALUES ({marks}) RETURNING {COLUMNS}",
        *data.values(),
    )


async def update_policy(
    conn: asyncpg.Connection, policy_id: uuid.UUID, fields: dict[str, Any]
) -> asyncpg.Record:
    """Update the given columns and take a new version."""
    sets, values = assignments(fields, WRITABLE)
    return await conn.fetchrow(
        f"UPDATE registry.policies SET {sets}, version = nextval('registry.change_seq')"
        f" WHERE id = $1 RETURNING {COLUMNS}",
        policy_id,
        *values,
    )


async def delete_policy(conn: asyncpg.Connection, policy_id: uuid.UUID) -> bool:
    """Delete a policy; False when it was gone."""
    return (
        await conn.fetchval("DELETE FROM registry.policies WHERE id = $1 RETURNING true", policy_id)
        is not None
    )


async def enabled_policies(
    conn: asyncpg.Connection, orgs: Sequence[str] | None = None
) -> list[asyncpg.Record]:
    """The enabled policies of some orgs (None: every org)."""
    return await conn.fetch(
        f"SELECT {COLUMNS} FROM registry.policies"
        " WHERE enabled AND ($1::text[] IS NULL OR org = ANY($1::text[])) ORDER BY org, priority",
        list(orgs) if orgs is not None else None,
    )


async def list_approvals(
    conn: asyncpg.Connection, orgs: Sequence[str] | None = None
) -> list[asyncpg.Record]:
    """Approvals of some orgs (None: every org) with the MCP and version they name."""
    return await conn.fetch(
        "SELECT a.org, a.version_id, a.approved_by, a.reason, a.created_at,"
        " v.visible_version, m.id AS mcp_id, m.name AS mcp"
        " FROM registry.policy_approvals a JOIN registry.mcp_versions v ON v.id = a.version_id"
        " JOIN registry.mcps m ON m.id = v.mcp_id"
        " WHERE ($1::text[] IS NULL OR a.org = ANY($1::text[]))"
        " ORDER BY a.created_at DESC, a.version_id",
        list(orgs) if orgs is not None else None,
    )


async def upsert_approval(
    conn: asyncpg.Connection, org: str, version_id: uuid.UUID, actor: str, reason: str
) -> None:
    """Record an org's approval of a version (again: the reason and approver are updated)."""
    await conn.execute(
        "INSERT INTO registry.policy_approvals (org, version_id, approved_by, reason)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (org, version_id)"
        " DO UPDATE SET approved_by = $3, reason = $4",
        org,
        version_id,
        actor,
        reason,
    )


async def delete_approval(conn: asyncpg.Connection, org: str, version_id: uuid.UUID) -> bool:
    """Withdraw an approval; False when there was none."""
    return (
        await conn.fetchval(
            "DELETE FROM registry.policy_approvals WHERE org = $1 AND version_id = $2"
            " RETURNING true",
            org,
            version_id,
        )
        is not None
    )


async def find_version(
    conn: asyncpg.Connection, org: str | None, mcp: str, version: str | None
) -> asyncpg.Record | None:
    """The certification row of an MCP (by name) at a visible version (None: its latest).

    Only MCPs `org` may read: public ones and its own private ones; its own wins a name clash."""
    return await conn.fetchrow(
        f"{CERTIFICATION_SQL} WHERE m.name = $1"
        " AND (m.visibility = 'public' OR m.org = $2)"
        " AND ($3::text IS NULL OR v.visible_version = $3)"
        " ORDER BY (m.org IS NOT DISTINCT FROM $2) DESC, v.created_at DESC, v.id LIMIT 1",
        mcp,
        org,
        version,
    )


async def certifications(
    conn: asyncpg.Connection, version_ids: Sequence[uuid.UUID]
) -> list[asyncpg.Record]:
    """The certification rows of versions by id."""
    return await conn.fetch(f"{CERTIFICATION_SQL} WHERE v.id = ANY($1::uuid[])", list(version_ids))


async def readable_version(
    conn: asyncpg.Connection, org: str | None, version_id: uuid.UUID
) -> asyncpg.Record | None:
    """A version by id when `org` may read its MCP (public, or `org`'s own)."""
    return await conn.fetchrow(
        f"{CERTIFICATION_SQL} WHERE v.id = $1 AND (m.visibility = 'public' OR m.org = $2)",
        version_id,
        org,
    )


async def snapshot_tools(conn: asyncpg.Connection, version_id: uuid.UUID) -> list[dict[str, Any]]:
    """The tools of a version's latest snapshot ([] without one)."""
    tools = await conn.fetchval(
        "SELECT tools FROM registry.snapshots WHERE version_id = $1"
        " ORDER BY created_at DESC, id LIMIT 1",
        version_id,
    )
    return list(tools or [])
