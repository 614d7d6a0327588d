"""Events the audit service consumes: everything on events.>, durably and once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from libs.common.bus import Bus, transactional
from libs.common.events import Event
from services.audit import store

DURABLE = "audit-store"


async def on_event(conn: asyncpg.Connection, event: Event) -> None:
    """Heartbeats update the replica table; every other event is stored as a record."""
    kind = event.type.rsplit(".", 2)
    is_service_event = len(kind) == 3 and kind[1] == "service"
    if is_service_event and kind[2] in ("heartbeat", "started"):
        data = event.data
        await store.upsert_instance(
            conn,
            service=data["service"],
            instance=data["instance"],
            version=data.get("version", ""),
            started_at=data.get("started_at", event.time),
            seen_at=event.time,
            interval_s=float(data.get("interval_s", 5.0)),
        )
        if kind[2] == "heartbeat":
            return
    if is_service_event and kind[2] == "stopping":
        await store.mark_stopped(conn, event.data["service"], event.data["instance"], event.time)
    await store.insert_event(conn, event)


@asynccontextmanager
async def running(bus: Bus, pool: asyncpg.Pool) -> AsyncIterator[None]:
    """Consume while the service runs (the bus stops the consumer on close)."""
    bus.consume(DURABLE, ["events.>"], transactional(pool, "audit", DURABLE, on_event))
    yield
