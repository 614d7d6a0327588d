"""SQL for activity records (every event but tool calls and heartbeats, in audit.events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from libs.common.pagination import ListQuery
from libs.common.sql import fetch_page
from services.audit.store.query import Where
from services.audit.visibility import Scope

COLUMNS = "id, type, action, source, time, actor, org, target, before, after, data, trace_id"
SORTS = ("time", "action", "actor", "source")
FILTERS = ("action", "actor", "actor_id", "org", "source", "target", "since", "until")


@dataclass(frozen=True)
class ActivityFilters:
    """Validated filters of an activity query; `action` ending in `.` or `*` is a prefix."""

    action: str | None = None
    actor: str | None = None
    org: tuple[str, ...] | None = None
    source: str | None = None
    target: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None


def _where(filters: ActivityFilters, scope: Scope) -> Where:
    """The WHERE clause of a filtered, scoped activity query."""
    w = Where()
    w.scope(scope, "org", "actor")
    if filters.action:
        if filters.action.endswith(("*", ".")):
            w.add("action LIKE {}", filters.action.rstrip("*") + "%")
        else:
            w.add("action = {}", filters.action)
    for col in ("actor", "source", "target"):
        value = getattr(filters, col)
        if value is not None:
            w.add(f"{col} = {{}}", value)
    if filters.org is not None:
        w.add("org = ANY({}::text[])", list(filters.org))
    if filters.since is not None:
        w.add("time >= {}", filters.since)
    if filters.until is not None:
        w.add("time < {}", filters.until)
    w.search(("action", "target", "actor"), filters.q)
    return w


async def list_activity(
    conn: asyncpg.Connection, filters: ActivityFilters, scope: Scope, query: ListQuery
) -> tuple[list[asyncpg.Record], int]:
    """One page of activity and the total matching."""
    return await fetch_page(
        conn, COLUMNS, "audit.events", _where(filters, scope), query, f"{query.order_sql}, id"
    )


async def iter_activity(
    conn: asyncpg.Connection, filters: ActivityFilters, scope: Scope, order_sql: str
) -> AsyncIterator[asyncpg.Record]:
    """Every matching record through a server-side cursor (the caller holds a transaction)."""
    w = _where(filters, scope)
    sql = f"SELECT {COLUMNS} FROM audit.events{w.sql} ORDER BY {order_sql}, id"
    async for row in conn.cursor(sql, *w.args, prefetch=500):
        yield row


async def activity_stats(
    conn: asyncpg.Connection, filters: ActivityFilters, scope: Scope, top: int
) -> dict[str, Any]:
    """Totals by action, by source and the most active actors."""
    w = _where(filters, scope)
    base = f"FROM audit.events{w.sql}"
    total = await conn.fetchval(f"SELECT count(*) {base}", *w.args)
    by_action = await conn.fetch(
        f"SELECT action, count(*) AS count {base} GROUP BY action ORDER BY count DESC, action",
        *w.args,
    )
    by_source = await conn.fetch(
        f"SELECT source, count(*) AS count {base} GROUP BY source ORDER BY count DESC, source",
        *w.args,
    )
    actors = await conn.fetch(
        f"SELECT actor, count(*) AS count {base} GROUP BY actor"
        f" ORDER BY count DESC, actor NULLS LAST LIMIT {int(top)}",
        *w.args,
    )
    return {"total": total, "by_action": by_action, "by_source": by_source, "actors": actors}


async def delete_events_before(conn: asyncpg.Connection, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` activity records older than `cutoff`; returns how many."""
    result = await conn.execute(
        "DELETE FROM audit.events WHERE id IN (SELECT id FROM audit.events"
        " WHERE time < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        cutoff,
        batch,
    )
    return int(result.split()[-1])


async def delete_processed_before(conn: asyncpg.Connection, cutoff: datetime, batch: int) -> int:
    """Forget consumed event ids older than `cutoff` (past JetStream's redelivery horizon)."""
    result = await conn.execute(
        "DELETE FROM audit.processed_events WHERE ctid IN (SELECT ctid FROM"
        " audit.processed_events WHERE processed_at < $1 LIMIT $2)",
        cutoff,
        batch,
    )
    return int(result.split()[-1])
