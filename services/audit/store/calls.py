"""SQL for tool-call records and their per-minute rollups."""

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

COLUMNS = (
    "id, time, server, tool, status, principal_kind, principal_id, principal_name, credential_id,"
    " org, team, endpoint, method, error_code, error_message, latency_ms, upstream_ms,"
    " request_bytes, response_bytes, arguments, session_id, client, trace_id, caller_org,"
    " tool_fingerprint"
)
COLUMN_NAMES = tuple(c.strip() for c in COLUMNS.split(","))
PLACEHOLDERS = ", ".join(f"${n}" for n in range(1, len(COLUMN_NAMES) + 1))
# the columns' types, in COLUMNS' order: a batch goes in as one array per column
_TYPES = (
    "uuid timestamptz text text text text text text text text text text text integer text"
    " float8 float8 bigint bigint jsonb text text text text text"
).split()
_ROLLUP_SUMS = (
    "INSERT INTO audit.call_rollups AS r"
    " (minute, server, tool, calls, errors, denied, latency_sum, latency_max)"
    " SELECT date_trunc('minute', time), server, tool, count(*),"
    " count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE status = 'denied'),"
    " sum(coalesce(latency_ms, 0)), max(coalesce(latency_ms, 0)) FROM stored"
    # in key order: replicas' batches then lock the rollup rows they share in the same order
    " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    " ON CONFLICT (minute, server, tool) DO UPDATE SET calls = r.calls + EXCLUDED.calls,"
    " errors = r.errors + EXCLUDED.errors, denied = r.denied + EXCLUDED.denied,"
    " latency_sum = r.latency_sum + EXCLUDED.latency_sum,"
    " latency_max = GREATEST(r.latency_max, EXCLUDED.latency_max)"
)
INSERT_CALLS = (
    f"WITH stored AS (INSERT INTO audit.tool_calls ({COLUMNS})"
    f" SELECT * FROM unnest({', '.join(f'${n}::{t}[]' for n, t in enumerate(_TYPES, 1))})"
    " ON CONFLICT (id) DO NOTHING RETURNING time, server, tool, status, latency_ms) " + _ROLLUP_SUMS
)
SORTS = ("time", "latency_ms", "server", "tool", "status", "principal_name")
FILTERS = ("server", "tool", "status", "principal", "org", "team", "since", "until")


@dataclass(frozen=True)
class CallFilters:
    """Validated filters of a tool-call query."""

    server: str | None = None
    tool: str | None = None
    status: str | None = None
    principal: str | None = None
    org: str | None = None
    team: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None


async def insert_call(conn: asyncpg.Connection, row: dict[str, Any]) -> bool:
    """Store a call once (by event id) and count it in its minute's rollup."""
    inserted = await conn.fetchval(
        f"INSERT INTO audit.tool_calls ({COLUMNS}) VALUES ({PLACEHOLDERS})"
        " ON CONFLICT (id) DO NOTHING RETURNING true",
        *(row[c] for c in COLUMN_NAMES),
    )
    if not inserted:
        return False
    await conn.execute(
        "INSERT INTO audit.call_rollups AS r"
        " (minute, server, tool, calls, errors, denied, latency_sum, latency_max)"
        " VALUES (date_trunc('minute', $1::timestamptz), $2, $3, 1, $4, $5, $6, $6)"
        " ON CONFLICT (minute, server, tool) DO UPDATE SET calls = r.calls + 1,"
        " errors = r.errors + EXCLUDED.errors, denied = r.denied + EXCLUDED.denied,"
        " latency_sum = r.latency_sum + EXCLUDED.latency_sum,"
        " latency_max = GREATEST(r.latency_max, EXCLUDED.latency_max)",
        row["time"],
        row["server"],
        row["tool"],
        1 if row["status"] == "error" else 0,
        1 if row["status"] == "denied" else 0,
        float(row["latency_ms"] or 0.0),
    )
    return True


async def insert_calls(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    """Store calls once each (by event id) and count them in their minutes' rollups.

    One statement, whatever the number: the rows go in as one array per column, and the
    rollups are summed from the rows actually inserted (none for an id already stored)."""
    await conn.execute(INSERT_CALLS, *([row[c] for row in rows] for c in COLUMN_NAMES))


def _where(filters: CallFilters, scope: Scope) -> Where:
    """The WHERE clause of a filtered, scoped call query."""
    w = Where()
    w.scope(scope, "org", "principal_id")
    for col in ("server", "tool", "status", "org", "team"):
        value = getattr(filters, col)
        if value is not None:
            w.add(f"{col} = {{}}", value)
    if filters.principal is not None:
        w.add("(principal_id = {} OR principal_name = {})", filters.principal, filters.principal)
    if filters.since is not None:
        w.add("time >= {}", filters.since)
    if filters.until is not None:
        w.add("time < {}", filters.until)
    w.search(("server", "tool", "principal_name", "error_message"), filters.q)
    return w


async def list_calls(
    conn: asyncpg.Connection, filters: CallFilters, scope: Scope, query: ListQuery
) -> tuple[list[asyncpg.Record], int]:
    """One page of calls and the total matching."""
    return await fetch_page(
        conn, COLUMNS, "audit.tool_calls", _where(filters, scope), query, f"{query.order_sql}, id"
    )


async def get_call(conn: asyncpg.Connection, call_id: str, scope: Scope) -> asyncpg.Record | None:
    """One call by id, when the scope allows it."""
    w = Where()
    w.add("id = {}::uuid", call_id)
    w.scope(scope, "org", "principal_id")
    return await conn.fetchrow(f"SELECT {COLUMNS} FROM audit.tool_calls{w.sql}", *w.args)


async def iter_calls(
    conn: asyncpg.Connection, filters: CallFilters, scope: Scope, order_sql: str
) -> AsyncIterator[asyncpg.Record]:
    """Every matching call through a server-side cursor (the caller holds a transaction)."""
    w = _where(filters, scope)
    sql = f"SELECT {COLUMNS} FROM audit.tool_calls{w.sql} ORDER BY {order_sql}, id"
    async for row in conn.cursor(sql, *w.args, prefetch=500):
        yield row


_AGG = (
    "count(*) AS calls,"
    " count(*) FILTER (WHERE status = 'ok') AS ok,"
    " count(*) FILTER (WHERE status = 'error') AS errors,"
    " count(*) FILTER (WHERE status = 'denied') AS denied,"
    " avg(latency_ms) AS avg_ms,"
    " percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_ms,"
    " percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_ms,"
    " percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_ms"
)


async def stats(
    conn: asyncpg.Connection, filters: CallFilters, scope: Scope, top: int
) -> dict[str, Any]:
    """Counts, error rate and latency percentiles overall, by server and by tool; top principals."""
    w = _where(filters, scope)
    base = f"FROM audit.tool_calls{w.sql}"
    overall = await conn.fetchrow(f"SELECT {_AGG} {base}", *w.args)
    by_server = await conn.fetch(
        f"SELECT server, {_AGG} {base} GROUP BY server ORDER BY calls DESC, server", *w.args
    )
    by_tool = await conn.fetch(
        f"SELECT server, tool, {_AGG} {base} GROUP BY server, tool"
        " ORDER BY calls DESC, server, tool",
        *w.args,
    )
    principals = await conn.fetch(
        "SELECT principal_id, max(principal_name) AS principal_name, count(*) AS calls,"
        f" count(*) FILTER (WHERE status = 'error') AS errors {base}"
        f" GROUP BY principal_id ORDER BY calls DESC, principal_id LIMIT {int(top)}",
        *w.args,
    )
    return {
        "overall": overall,
        "by_server": by_server,
        "by_tool": by_tool,
        "principals": principals,
    }


async def rollup_series(
    conn: asyncpg.Connection, since: datetime, until: datetime, bucket_s: int, server: str | None
) -> list[asyncpg.Record]:
    """Rollups summed into buckets of `bucket_s` seconds (aligned to the epoch)."""
    w = Where()
    w.add("minute >= {}", since)
    w.add("minute < {}", until)
    if server is not None:
        w.add("server = {}", server)
    bucket = w.arg(bucket_s)
    return await conn.fetch(
        f"SELECT to_timestamp(floor(extract(epoch FROM minute) / {bucket}) * {bucket}) AS bucket,"
        " sum(calls)::bigint AS calls, sum(errors)::bigint AS errors,"
        " sum(denied)::bigint AS denied, sum(latency_sum) AS latency_sum,"
        f" max(latency_max) AS latency_max FROM audit.call_rollups{w.sql}"
        " GROUP BY 1 ORDER BY 1",
        *w.args,
    )


async def rollup_totals(
    conn: asyncpg.Connection, since: datetime, until: datetime
) -> asyncpg.Record:
    """Calls, errors and latency sum over a range, from the rollups."""
    return await conn.fetchrow(
        "SELECT coalesce(sum(calls), 0)::bigint AS calls, coalesce(sum(errors), 0)::bigint AS"
        " errors, coalesce(sum(latency_sum), 0) AS latency_sum FROM audit.call_rollups"
        " WHERE minute >= $1 AND minute < $2",
        since,
        until,
    )


async def delete_calls_before(conn: asyncpg.Connection, cutoff: datetime, batch: int) -> int:
    """Delete up to `batch` calls older than `cutoff`; returns how many."""
    result = await conn.execute(
        "DELETE FROM audit.tool_calls WHERE id IN (SELECT id FROM audit.tool_calls"
        " WHERE time < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        cutoff,
        batch,
    )
    return int(result.split()[-1])


async def delete_rollups_before(conn: asyncpg.Connection, cutoff: datetime) -> int:
    """Delete rollups older than `cutoff` (few rows: one per minute, server and tool)."""
    result = await conn.execute("DELETE FROM audit.call_rollups WHERE minute < $1", cutoff)
    return int(result.split()[-1])
