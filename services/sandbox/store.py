"""SQL for the sandbox schema: process state, allowed hosts, approvals, code tools, policy."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

S = '"sandbox"'
APPROVAL_COLUMNS = (
    "id, kind, subject, server, version, status, reason, requested_by, decided_by, decided_at,"
    " details, created_at, updated_at"
)
TOOL_COLUMNS = (
    "id, name, description, code, input_schema, version, approved_version, status, created_by,"
    " created_at, updated_at"
)


# ---- processes ---------------------------------------------------------------------------


async def upsert_process(conn: asyncpg.Connection, snap: dict[str, Any], instance: str) -> None:
    """Record a process's last reported state."""
    await conn.execute(
        f"INSERT INTO {S}.processes (key, server, state, pid, restarts, exit_code, reason,"
        " instance) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (key) DO UPDATE SET state = $3, pid = $4, restarts = $5, exit_code = $6,"
        " reason = $7, instance = $8, updated_at = now()",
        snap["key"],
        snap["server"],
        snap["state"],
        snap.get("pid"),
        snap.get("restarts") or 0,
        snap.get("exit_code"),
        snap.get("reason"),
        instance,
    )


async def list_processes(conn: asyncpg.Connection, server: str) -> list[asyncpg.Record]:
    """Stored states of a server's processes (any replica)."""
    return await conn.fetch(
        f"SELECT key, server, state, pid, restarts, exit_code, reason, instance, updated_at"
        f" FROM {S}.processes WHERE server = $1 ORDER BY key",
        server,
    )


async def count_processes(conn: asyncpg.Connection) -> dict[str, int]:
    """Processes by state."""
    rows = await conn.fetch(f"SELECT state, count(*) AS n FROM {S}.processes GROUP BY state")
    return {r["state"]: r["n"] for r in rows}


async def delete_processes_of(conn: asyncpg.Connection, instance: str) -> None:
    """Forget every process row a replica stored (it is shutting down)."""
    await conn.execute(f"DELETE FROM {S}.processes WHERE instance = $1", instance)


async def delete_orphan_processes(conn: asyncpg.Connection, stale_s: float) -> list[asyncpg.Record]:
    """Delete the rows of replicas that died; return them. A live process's row is orphaned
    once its replica holds no live lease on the key. A stopped or failed process has no lease
    (it was released) but its replica still serves its logs: that row goes only when its replica
    has not touched it for `stale_s` (see `touch_ended_processes`)."""
    return await conn.fetch(
        f"DELETE FROM {S}.processes p WHERE NOT EXISTS (SELECT 1 FROM {S}.owners o"
        " WHERE o.key = p.key AND o.instance = p.instance AND o.expires_at > now())"
        " AND (p.state NOT IN ('stopped', 'failed')"
        "      OR p.updated_at < now() - make_interval(secs => $1))"
        " RETURNING key, server, state, pid, restarts, exit_code, instance",
        stale_s,
    )


async def touch_ended_processes(conn: asyncpg.Connection, instance: str) -> None:
    """Mark a live replica's stopped and failed process rows as still served."""
    await conn.execute(
        f"UPDATE {S}.processes SET updated_at = now()"
        " WHERE instance = $1 AND state IN ('stopped', 'failed')",
        instance,
    )


# ---- ownership leases ----------------------------------------------------------------------


async def get_owner_for_update(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    """A key's lease, locked, with whether it is still live."""
    return await conn.fetchrow(
        f"SELECT key, server, instance, expires_at > now() AS live FROM {S}.owners"
        " WHERE key = $1 FOR UPDATE",
        key,
    )


async def insert_owner(
    conn: asyncpg.Connection, key: str, server: str, instance: str, ttl_s: float
) -> bool:
    """Take a free key's lease; False when another replica inserted it first."""
    done = await conn.fetchval(
        f"INSERT INTO {S}.owners (key, server, instance, expires_at)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4))"
        " ON CONFLICT (key) DO NOTHING RETURNING true",
        key,
        server,
        instance,
        ttl_s,
    )
    return bool(done)


async def update_owner(conn: asyncpg.Connection, key: str, instance: str, ttl_s: float) -> None:
    """Give a key's lease to `instance` for `ttl_s` from now."""
    await conn.execute(
        f"UPDATE {S}.owners SET instance = $2, expires_at = now() + make_interval(secs => $3),"
        " updated_at = now() WHERE key = $1",
        key,
        instance,
        ttl_s,
    )


async def refresh_owners(
    conn: asyncpg.Connection, instance: str, keys: list[str], ttl_s: float
) -> list[str]:
    """Extend the live leases a replica still holds; returns the keys it still owns."""
    rows = await conn.fetch(
        f"UPDATE {S}.owners SET expires_at = now() + make_interval(secs => $3), updated_at = now()"
        " WHERE instance = $1 AND key = ANY($2::text[]) AND expires_at > now() RETURNING key",
        instance,
        keys,
        ttl_s,
    )
    return [r["key"] for r in rows]


async def expire_owner(conn: asyncpg.Connection, key: str, instance: str) -> None:
    """End a lease now (its holder no longer answers)."""
    await conn.execute(
        f"UPDATE {S}.owners SET expires_at = now(), updated_at = now()"
        " WHERE key = $1 AND instance = $2",
        key,
        instance,
    )


async def delete_owners(conn: asyncpg.Connection, instance: str, keys: list[str]) -> None:
    """Release some of a replica's leases (their processes stopped)."""
    await conn.execute(
        f"DELETE FROM {S}.owners WHERE instance = $1 AND key = ANY($2::text[])", instance, keys
    )


async def delete_owners_of(conn: asyncpg.Connection, instance: str) -> None:
    """Release every lease of a replica (it is shutting down)."""
    await conn.execute(f"DELETE FROM {S}.owners WHERE instance = $1", instance)


async def list_process_instances(conn: asyncpg.Connection, server: str) -> list[str]:
    """The replicas that stored a state of one of the server's processes."""
    rows = await conn.fetch(
        f"SELECT DISTINCT instance FROM {S}.processes WHERE server = $1", server
    )
    return [r["instance"] for r in rows]


async def list_live_owners(conn: asyncpg.Connection, server: str) -> list[asyncpg.Record]:
    """Live leases on a server's keys (the server itself and its per-user keys)."""
    return await conn.fetch(
        f"SELECT key, instance FROM {S}.owners WHERE server = $1 AND expires_at > now()"
        " ORDER BY key",
        server,
    )


# ---- allowed hosts -----------------------------------------------------------------------


async def list_allowed_hosts(conn: asyncpg.Connection, server: str) -> list[str]:
    """The egress allowlist of a server."""
    rows = await conn.fetch(
        f"SELECT host FROM {S}.allowed_hosts WHERE server = $1 ORDER BY host", server
    )
    return [r["host"] for r in rows]


async def insert_allowed_host(
    conn: asyncpg.Connection, server: str, host: str, actor: str | None
) -> bool:
    """Allow a host; False when it was allowed already."""
    done = await conn.fetchval(
        f"INSERT INTO {S}.allowed_hosts (server, host, created_by) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        server,
        host,
        actor,
    )
    return bool(done)


async def delete_allowed_host(conn: asyncpg.Connection, server: str, host: str) -> bool:
    """Remove a host; False when it was not there."""
    done = await conn.fetchval(
        f"DELETE FROM {S}.allowed_hosts WHERE server = $1 AND host = $2 RETURNING true",
        server,
        host,
    )
    return bool(done)


# ---- approvals ---------------------------------------------------------------------------


async def insert_approval(
    conn: asyncpg.Connection,
    *,
    kind: str,
    subject: str,
    server: str | None = None,
    version: int | None = None,
    requested_by: str | None = None,
    details: dict[str, Any] | None = None,
) -> asyncpg.Record | None:
    """Open a pending approval; None when the same one is already pending."""
    return await conn.fetchrow(
        f"INSERT INTO {S}.approvals (id, kind, subject, server, version, status, requested_by,"
        " details) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)"
        f" ON CONFLICT DO NOTHING RETURNING {APPROVAL_COLUMNS}",
        uuid.uuid4(),
        kind,
        subject,
        server,
        version,
        requested_by,
        details or {},
    )


async def get_pending_network_approval(
    conn: asyncpg.Connection, server: str, host: str
) -> asyncpg.Record | None:
    """The open network request of a server for a host."""
    return await conn.fetchrow(
        f"SELECT {APPROVAL_COLUMNS} FROM {S}.approvals WHERE kind = 'network' AND server = $1"
        " AND subject = $2 AND status = 'pending'",
        server,
        host,
    )


async def revoke_network_approvals(
    conn: asyncpg.Connection, server: str, host: str, reason: str, actor: str | None
) -> list[asyncpg.Record]:
    """Mark a server's approved requests for a host revoked (the host left its allowlist)."""
    return await conn.fetch(
        f"UPDATE {S}.approvals SET status = 'revoked', reason = $3, decided_by = $4,"
        " decided_at = now(), updated_at = now() WHERE kind = 'network' AND server = $1"
        f" AND subject = $2 AND status = 'approved' RETURNING {APPROVAL_COLUMNS}",
        server,
        host,
        reason,
        actor,
    )


async def get_approval(conn: asyncpg.Connection, approval_id: uuid.UUID) -> asyncpg.Record | None:
    """One approval."""
    return await conn.fetchrow(
        f"SELECT {APPROVAL_COLUMNS} FROM {S}.approvals WHERE id = $1", approval_id
    )


async def list_approvals(
    conn: asyncpg.Connection,
    kind: str,
    status: str | None,
    order_sql: str,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    """A page of approvals of one kind, optionally by status."""
    where = "kind = $1 AND ($2::text IS NULL OR status = $2)"
    rows = await conn.fetch(
        f"SELECT {APPROVAL_COLUMNS} FROM {S}.approvals WHERE {where}"
        f" ORDER BY {order_sql} LIMIT $3 OFFSET $4",
        kind,
        status,
        limit,
        offset,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM {S}.approvals WHERE {where}", kind, status)
    return list(rows), total


async def approval_stats(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Counts by kind and status."""
    return await conn.fetch(
        f"SELECT kind, status, count(*) AS n FROM {S}.approvals GROUP BY kind, status"
    )


async def decide_approval(
    conn: asyncpg.Connection,
    approval_id: uuid.UUID,
    status: str,
    reason: str | None,
    actor: str | None,
) -> asyncpg.Record | None:
    """Set an approval's status (locked row)."""
    return await conn.fetchrow(
        f"UPDATE {S}.approvals SET status = $2, reason = $3, decided_by = $4, decided_at = now(),"
        f" updated_at = now() WHERE id = $1 RETURNING {APPROVAL_COLUMNS}",
        approval_id,
        status,
        reason,
        actor,
    )


async def supersede_tool_approvals(conn: asyncpg.Connection, tool_id: str) -> None:
    """Close a tool's pending approvals (a newer version replaces them)."""
    await conn.execute(
        f"UPDATE {S}.approvals SET status = 'rejected', reason = 'superseded by a newer version',"
        " updated_at = now() WHERE kind = 'tool' AND subject = $1 AND status = 'pending'",
        tool_id,
    )


# ---- code tools --------------------------------------------------------------------------


async def insert_tool(
    conn: asyncpg.Connection, body: dict[str, Any], actor: str | None
) -> asyncpg.Record:
    """Create a tool at version 1 (and its first version row)."""
    row = await conn.fetchrow(
        f"INSERT INTO {S}.code_tools (id, name, description, code, input_schema, version,"
        f" status, created_by) VALUES ($1, $2, $3, $4, $5, 1, 'pending', $6)"
        f" RETURNING {TOOL_COLUMNS}",
        uuid.uuid4(),
        body["name"],
        body.get("description") or "",
        body["code"],
        body["input_schema"],
        actor,
    )
    await insert_version(conn, row, actor, "created")
    return row


async def insert_version(
    conn: asyncpg.Connection, tool: asyncpg.Record, actor: str | None, note: str | None
) -> None:
    """Store the tool's current content as its version row."""
    await conn.execute(
        f"INSERT INTO {S}.code_tool_versions (tool_id, version, description, code, input_schema,"
        " created_by, note) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        tool["id"],
        tool["version"],
        tool["description"],
        tool["code"],
        tool["input_schema"],
        actor,
        note,
    )


async def get_tool(
    conn: asyncpg.Connection, ref: str, *, lock: bool = False
) -> asyncpg.Record | None:
    """A tool by id or name."""
    suffix = " FOR UPDATE" if lock else ""
    try:
        tool_id = uuid.UUID(ref)
    except ValueError:
        return await conn.fetchrow(
            f"SELECT {TOOL_COLUMNS} FROM {S}.code_tools WHERE name = $1{suffix}", ref
        )
    return await conn.fetchrow(
        f"SELECT {TOOL_COLUMNS} FROM {S}.code_tools WHERE id = $1{suffix}", tool_id
    )


async def list_tools(
    conn: asyncpg.Connection,
    q: str | None,
    status: str | None,
    order_sql: str,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], int]:
    """A page of tools."""
    where = (
        "($1::text IS NULL OR name ILIKE '%' || $1 || '%' OR description ILIKE '%' || $1 || '%')"
        " AND ($2::text IS NULL OR status = $2)"
    )
    rows = await conn.fetch(
        f"SELECT {TOOL_COLUMNS} FROM {S}.code_tools WHERE {where} ORDER BY {order_sql}"
        " LIMIT $3 OFFSET $4",
        q,
        status,
        limit,
        offset,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM {S}.code_tools WHERE {where}", q, status)
    return list(rows), total


async def update_tool(
    conn: asyncpg.Connection, tool_id: uuid.UUID, fields: dict[str, Any]
) -> asyncpg.Record:
    """Save new content as the next version; approval is needed again."""
    return await conn.fetchrow(
        f"UPDATE {S}.code_tools SET description = $2, code = $3, input_schema = $4,"
        " version = version + 1, status = 'pending', updated_at = now() WHERE id = $1"
        f" RETURNING {TOOL_COLUMNS}",
        tool_id,
        fields["description"],
        fields["code"],
        fields["input_schema"],
    )


async def set_tool_status(
    conn: asyncpg.Connection, tool_id: uuid.UUID, status: str, approved_version: int | None
) -> asyncpg.Record:
    """Set a tool's status and approved version."""
    return await conn.fetchrow(
        f"UPDATE {S}.code_tools SET status = $2, approved_version = $3, updated_at = now()"
        f" WHERE id = $1 RETURNING {TOOL_COLUMNS}",
        tool_id,
        status,
        approved_version,
    )


async def delete_tool(conn: asyncpg.Connection, tool_id: uuid.UUID) -> None:
    """Delete a tool and its versions."""
    await conn.execute(f"DELETE FROM {S}.code_tools WHERE id = $1", tool_id)


async def list_versions(conn: asyncpg.Connection, tool_id: uuid.UUID) -> list[asyncpg.Record]:
    """Every version of a tool, newest first."""
    return await conn.fetch(
        f"SELECT version, description, code, input_schema, created_by, note, created_at"
        f" FROM {S}.code_tool_versions WHERE tool_id = $1 ORDER BY version DESC",
        tool_id,
    )


async def get_version(
    conn: asyncpg.Connection, tool_id: uuid.UUID, version: int
) -> asyncpg.Record | None:
    """One version of a tool."""
    return await conn.fetchrow(
        f"SELECT version, description, code, input_schema, created_by, note, created_at"
        f" FROM {S}.code_tool_versions WHERE tool_id = $1 AND version = $2",
        tool_id,
        version,
    )


async def approved_tools(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Approved tools with the content of their approved version (the built-in code server)."""
    return await conn.fetch(
        f"SELECT t.id, t.name, v.description, v.code, v.input_schema, t.approved_version"
        f" FROM {S}.code_tools t JOIN {S}.code_tool_versions v"
        "   ON v.tool_id = t.id AND v.version = t.approved_version"
        " WHERE t.approved_version IS NOT NULL ORDER BY t.name"
    )


# ---- policy ------------------------------------------------------------------------------


async def get_policy(conn: asyncpg.Connection) -> dict[str, Any] | None:
    """The stored policy document."""
    return await conn.fetchval(f"SELECT doc FROM {S}.policy WHERE id")


async def put_policy(conn: asyncpg.Connection, doc: dict[str, Any], actor: str | None) -> None:
    """Store the policy document."""
    await conn.execute(
        f"INSERT INTO {S}.policy (id, doc, updated_by) VALUES (true, $1, $2)"
        " ON CONFLICT (id) DO UPDATE SET doc = $1, updated_by = $2, updated_at = now()",
        doc,
        actor,
    )


# ---- modules -----------------------------------------------------------------------------


async def list_modules(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """The module allowlist."""
    return await conn.fetch(
        f"SELECT name, version, status, install_error, added_by, created_at, updated_at"
        f" FROM {S}.modules ORDER BY name"
    )


async def insert_module(
    conn: asyncpg.Connection, name: str, actor: str | None, version: str | None = None
) -> None:
    """Allow a module (idempotent)."""
    await conn.execute(
        f"INSERT INTO {S}.modules (name, version, added_by) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET version = coalesce($2, modules.version),"
        " updated_at = now()",
        name,
        version,
        actor,
    )


async def delete_module(conn: asyncpg.Connection, name: str) -> bool:
    """Remove a module from the allowlist."""
    return bool(
        await conn.fetchval(f"DELETE FROM {S}.modules WHERE name = $1 RETURNING true", name)
    )


async def set_module_install(
    conn: asyncpg.Connection, name: str, status: str, version: str | None, error: str | None
) -> asyncpg.Record | None:
    """Record the outcome of an install."""
    return await conn.fetchrow(
        f"UPDATE {S}.modules SET status = $2, version = coalesce($3, version),"
        " install_error = $4, updated_at = now() WHERE name = $1"
        " RETURNING name, version, status, install_error, added_by, created_at, updated_at",
        name,
        status,
        version,
        error,
    )
