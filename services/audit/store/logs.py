"""SQL for the services' own log lines (audit.system_logs, a bounded table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class LogFilters:
    """GET /api/v1/monitoring/logs: minimum level, source service, time range, how many."""

    level: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100


async def insert_line(conn: asyncpg.Connection, line: dict[str, Any], keep: int) -> None:
    """Store one line, then drop all but the newest `keep`."""
    await conn.execute(
        "INSERT INTO audit.system_logs (time, level, source, instance, event, fields)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        line["time"],
        line["level"],
        line["source"],
        line.get("instance"),
        line["event"],
        line.get("fields") or {},
    )
    await conn.execute(
        "DELETE FROM audit.system_logs WHERE id <= (SELECT max(id) FROM audit.system_logs) - $1",
        keep,
    )


async def list_lines(conn: asyncpg.Connection, f: LogFilters) -> tuple[list[asyncpg.Record], int]:
    """Matching lines, newest first, at most `f.limit`, and how many match in all."""
    levels = list(LEVELS[LEVELS.index(f.level) :]) if f.level else list(LEVELS)
    where = (
        " WHERE level = ANY($1) AND ($2::text IS NULL OR source = $2)"
        " AND ($3::timestamptz IS NULL OR time >= $3) AND ($4::timestamptz IS NULL OR time < $4)"
    )
    args = (levels, f.source, f.since, f.until)
    rows = await conn.fetch(
        "SELECT time, level, source, instance, event, fields FROM audit.system_logs"
        f"{where} ORDER BY time DESC, id DESC LIMIT $5",
        *args,
        f.limit,
    )
    total = await conn.fetchval(f"SELECT count(*) FROM audit.system_logs{where}", *args)
    return list(rows), total
