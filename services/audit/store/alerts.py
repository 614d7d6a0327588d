"""SQL for alert rules, alerts, and the measurements rules are evaluated on."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from libs.common.pagination import ListQuery
from libs.common.sql import fetch_page
from services.audit.store.query import Where

RULE_COLUMNS = (
    "id, name, kind, server, threshold, window_minutes, webhook_url, enabled, org, org_refs,"
    " created_by, created_at, updated_at"
)
ALERT_COLUMNS = (
    "id, rule_id, rule_name, kind, server, org, status, value, threshold, window_minutes,"
    " message, fired_at, resolved_at, webhook_status"
)
RULE_SORTS = ("created_at", "name", "kind", "server")
ALERT_SORTS = ("fired_at", "resolved_at", "rule_name", "server", "status")
# evaluation is done by one replica at a time (transaction-scoped advisory lock)
EVALUATION_LOCK = 0x617564_616C72


async def try_evaluation_lock(conn: asyncpg.Connection) -> bool:
    """Take the evaluation lock for the caller's transaction unless another replica holds it."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", EVALUATION_LOCK))


def _org_scope(where: Where, orgs: tuple[str, ...] | None) -> None:
    """Restrict to rows of `orgs` (None: every row)."""
    if orgs is not None:
        where.add("org = ANY({}::text[])", list(orgs))


async def insert_rule(conn: asyncpg.Connection, fields: dict[str, Any]) -> asyncpg.Record:
    """Store a new rule."""
    return await conn.fetchrow(
        "INSERT INTO audit.alert_rules (id, name, kind, server, threshold, window_minutes,"
        " webhook_url, enabled, org, org_refs, created_by)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {RULE_COLUMNS}",
        uuid.uuid4(),
        fields["name"],
        fields["kind"],
        fields.get("server"),
        fields["threshold"],
        fields["window_minutes"],
        fields.get("webhook_url"),
        fields["enabled"],
        fields.get("org"),
        fields.get("org_refs") or [],
        fields.get("created_by"),
    )


async def get_rule(conn: asyncpg.Connection, rule_id: uuid.UUID) -> asyncpg.Record | None:
    """One rule."""
    return await conn.fetchrow(
        f"SELECT {RULE_COLUMNS} FROM audit.alert_rules WHERE id = $1", rule_id
    )


async def list_rules(
    conn: asyncpg.Connection, orgs: tuple[str, ...] | None, query: ListQuery
) -> tuple[list[asyncpg.Record], int]:
    """A page of rules of `orgs` (None: all)."""
    where = Where()
    _org_scope(where, orgs)
    for name in ("kind", "server"):
        if name in query.filters:
            where.add(f"{name} = {{}}", query.filters[name])
    return await fetch_page(
        conn, RULE_COLUMNS, "audit.alert_rules", where, query, f"{query.order_sql}, id"
    )


async def all_rules(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every rule, for evaluation."""
    return await conn.fetch(f"SELECT {RULE_COLUMNS} FROM audit.alert_rules ORDER BY id")


async def update_rule(
    conn: asyncpg.Connection, rule_id: uuid.UUID, changes: dict[str, Any]
) -> asyncpg.Record | None:
    """Change some fields of a rule (names were checked against the model)."""
    where = Where()
    sets = ", ".join(f"{name} = {where.arg(value)}" for name, value in changes.items())
    return await conn.fetchrow(
        f"UPDATE audit.alert_rules SET {sets}, updated_at = now()"
        f" WHERE id = {where.arg(rule_id)} RETURNING {RULE_COLUMNS}",
        *where.args,
    )


async def delete_rule(conn: asyncpg.Connection, rule_id: uuid.UUID) -> bool:
    """Delete a rule (its alerts stay, without the rule id)."""
    return (
        await conn.fetchval("DELETE FROM audit.alert_rules WHERE id = $1 RETURNING true", rule_id)
        is not None
    )


async def firing_alerts(conn: asyncpg.Connection) -> dict[uuid.UUID, asyncpg.Record]:
    """The firing alert of each rule that has one."""
    rows = await conn.fetch(
        f"SELECT {ALERT_COLUMNS} FROM audit.alerts WHERE status = 'firing' AND rule_id IS NOT NULL"
    )
    return {r["rule_id"]: r for r in rows}


async def insert_alert(conn: asyncpg.Connection, fields: dict[str, Any]) -> asyncpg.Record:
    """Store a firing alert."""
    return await conn.fetchrow(
        "INSERT INTO audit.alerts (id, rule_id, rule_name, kind, server, org, status, value,"
        " threshold, window_minutes, message, fired_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, 'firing', $7, $8, $9, $10, $11)"
        f" RETURNING {ALERT_COLUMNS}",
        uuid.uuid4(),
        fields["rule_id"],
        fields["rule_name"],
        fields["kind"],
        fields.get("server"),
        fields.get("org"),
        fields.get("value"),
        fields.get("threshold"),
        fields.get("window_minutes"),
        fields["message"],
        fields["fired_at"],
    )


async def resolve_alert(
    conn: asyncpg.Connection, alert_id: uuid.UUID, at: datetime, value: float | None, message: str
) -> asyncpg.Record:
    """Mark a firing alert resolved."""
    return await conn.fetchrow(
        "UPDATE audit.alerts SET status = 'resolved', resolved_at = $2,"
        " value = coalesce($3, value), message = $4"
        f" WHERE id = $1 RETURNING {ALERT_COLUMNS}",
        alert_id,
        at,
        value,
        message,
    )


async def set_webhook_status(conn: asyncpg.Connection, alert_id: uuid.UUID, status: str) -> None:
    """Remember how the last webhook delivery of an alert went."""
    await conn.execute(
        "UPDATE audit.alerts SET webhook_status = $2 WHERE id = $1", alert_id, status
    )


async def list_alerts(
    conn: asyncpg.Connection,
    orgs: tuple[str, ...] | None,
    filters: dict[str, Any],
    query: ListQuery,
) -> tuple[list[asyncpg.Record], int]:
    """A page of alerts of `orgs` (None: all), filtered by state, server, rule, since."""
    where = Where()
    _org_scope(where, orgs)
    if filters.get("state"):
        where.add("status = {}", filters["state"])
    if filters.get("server"):
        where.add("server = {}", filters["server"])
    if filters.get("rule"):
        where.add("rule_id = {}", filters["rule"])
    if filters.get("since"):
        where.add("(fired_at >= {} OR resolved_at >= {})", filters["since"], filters["since"])
    return await fetch_page(
        conn, ALERT_COLUMNS, "audit.alerts", where, query, f"{query.order_sql} NULLS LAST, id"
    )


async def error_rate(
    conn: asyncpg.Connection, since: datetime, server: str | None, org_refs: list[str] | None
) -> tuple[int, int]:
    """Calls and errors since `since`: from the rollups, or the records when org-scoped."""
    if org_refs is None:
        row = await conn.fetchrow(
            "SELECT coalesce(sum(calls), 0) AS calls, coalesce(sum(errors), 0) AS errors"
            " FROM audit.call_rollups WHERE minute >= date_trunc('minute', $1::timestamptz)"
            " AND ($2::text IS NULL OR server = $2)",
            since,
            server,
        )
    else:
        row = await conn.fetchrow(
            "SELECT count(*) AS calls, count(*) FILTER (WHERE status = 'error') AS errors"
            " FROM audit.tool_calls WHERE time >= $1 AND ($2::text IS NULL OR server = $2)"
            " AND org = ANY($3::text[])",
            since,
            server,
            org_refs,
        )
    return int(row["calls"]), int(row["errors"])


async def latency_p95(
    conn: asyncpg.Connection, since: datetime, server: str | None, org_refs: list[str] | None
) -> float | None:
    """The 95th percentile latency (ms) of the calls since `since`; None without calls."""
    return await conn.fetchval(
        "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FROM audit.tool_calls"
        " WHERE time >= $1 AND ($2::text IS NULL OR server = $2)"
        " AND ($3::text[] IS NULL OR org = ANY($3::text[]))",
        since,
        server,
        org_refs,
    )


async def server_status(
    conn: asyncpg.Connection, server: str, org_refs: list[str] | None
) -> asyncpg.Record | None:
    """The projected status of `server` (org-scoped: only when the server is the org's)."""
    return await conn.fetchrow(
        "SELECT server, status, org, since FROM audit.server_status WHERE server = $1"
        " AND ($2::text[] IS NULL OR org = ANY($2::text[]))",
        server,
        org_refs,
    )
