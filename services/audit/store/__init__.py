"""SQL for the audit schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from libs.common.events import Event


async def insert_event(
    conn: asyncpg.Connection,
    event: Event,
    *,
    target: str | None = None,
    before: Any = None,
    after: Any = None,
) -> bool:
    """Store an event as an activity record once; False when its id was stored before."""
    inserted = await conn.fetchval(
        "INSERT INTO audit.events (id, type, source, time, actor, org, trace_id, data, action,"
        " target, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $2, $9, $10, $11)"
        " ON CONFLICT (id) DO NOTHING RETURNING true",
        event.id,
        event.type,
        event.source,
        parse_time(event.time),
        event.actor,
        event.org,
        event.trace_id,
        event.data,
        target,
        before,
        after,
    )
    return bool(inserted)


async def upsert_instance(
    conn: asyncpg.Connection,
    *,
    service: str,
    instance: str,
    version: str,
    started_at: str,
    seen_at: str,
    interval_s: float,
    stats: dict[str, Any] | None = None,
) -> None:
    """Record a replica's latest sign of life (older heartbeats never overwrite newer ones)."""
    await conn.execute(
        "INSERT INTO audit.service_instances"
        " (service, instance, version, started_at, last_heartbeat, interval_s, stats)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (service, instance) DO UPDATE SET version = EXCLUDED.version,"
        " started_at = EXCLUDED.started_at, interval_s = EXCLUDED.interval_s,"
        " stats = CASE WHEN EXCLUDED.last_heartbeat >= audit.service_instances.last_heartbeat"
        " THEN coalesce(EXCLUDED.stats, audit.service_instances.stats)"
        " ELSE audit.service_instances.stats END,"
        " last_heartbeat = GREATEST(audit.service_instances.last_heartbeat,"
        " EXCLUDED.last_heartbeat), stopped_at = NULL",
        service,
        instance,
        version,
        parse_time(started_at),
        parse_time(seen_at),
        interval_s,
        stats,
    )


async def mark_stopped(conn: asyncpg.Connection, service: str, instance: str, at: str) -> None:
    """A replica said it is stopping."""
    await conn.execute(
        "UPDATE audit.service_instances SET stopped_at = $3 WHERE service = $1 AND instance = $2",
        service,
        instance,
        parse_time(at),
    )


async def list_instances(conn: asyncpg.Connection, since: datetime) -> list[asyncpg.Record]:
    """Replicas heard from since `since`, with the database's current time."""
    return await conn.fetch(
        "SELECT service, instance, version, started_at, last_heartbeat, interval_s, stopped_at,"
        " stats, now() AS now FROM audit.service_instances WHERE last_heartbeat >= $1"
        " ORDER BY service, instance",
        since,
    )


def parse_time(value: str) -> datetime:
    """RFC 3339 text to an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
