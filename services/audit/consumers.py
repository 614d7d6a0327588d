"""Events the audit service consumes: everything on events.>, durably and once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import structlog

from libs.common import events as ev
from libs.common import subjects
from libs.common.bus import Bus
from libs.common.events import (
    TOOL_CALLED,
    Event,
)
from libs.common.idempotence import TxBatchHandler, transactional, transactional_batch
from services.audit import metrics, records, store
from services.audit.store import calls, servers

log = structlog.get_logger()

DURABLE = "audit-store"
SHARE_TYPES = (ev.SERVER_SHARED.name, ev.SERVER_UNSHARED.name)


def make_handler(default_policy: str, written: dict[str, str] | None = None):  # noqa: ANN201 - a TxHandler
    """The transactional handler, with the env's argument policy as the default.

    `written` (metrics.measured's) gets the kind of record each applied event became."""

    async def on_event(conn: asyncpg.Connection, event: Event) -> None:
        """Heartbeats update replicas, tool calls become records, the rest activity."""
        platform = ev.platform_event(event.type)
        if platform is not None:
            if await on_service_event(conn, event, platform.decode(event)):
                if written is not None:
                    written[event.id] = "replica"
                return
        if event.type == TOOL_CALLED.name:
            await on_tool_called(conn, event, default_policy)
            if written is not None:
                written[event.id] = "call"
            return
        if event.type in ev.SERVER_EVENTS:
            await on_server_event(conn, event)
        elif event.type == ev.SETTINGS_UPDATED.name:
            await on_settings_updated(conn, event)
        shown = records.without_tool_changes(event)
        await store.insert_event(conn, shown, **records.activity_fields(shown))
        for fact in records.tool_facts(event):  # a refresh's tools, one activity record each
            await store.insert_event(conn, fact, **records.activity_fields(fact))
        if written is not None:
            written[event.id] = "activity"

    return on_event


def make_batch_handler(
    default_policy: str, written: dict[str, str] | None = None
) -> TxBatchHandler:
    """The batch's transactional handler: events applied in order, tool calls stored at once.

    The argument policy is read once per batch, and again after a settings event passes (the
    calls after it follow the new policy); the calls' rows go in with one statement at the end
    (nothing else in a batch reads them)."""
    one = make_handler(default_policy, written)

    async def on_events(conn: asyncpg.Connection, events: list[Event]) -> None:
        """Tool calls become rows of one insert; every other event is applied as alone."""
        policy: str | None = None
        rows = []
        for event in events:
            if event.type != TOOL_CALLED.name:
                await one(conn, event)
                if event.type == ev.SETTINGS_UPDATED.name:
                    policy = None  # it may have changed: the next call reads it again
                continue
            if policy is None:
                policy = await servers.get_setting(conn, records.ARGUMENTS_SETTING)
                policy = policy or default_policy
            rows.append(records.call_row(event, policy, store.parse_time(event.time)))
            if written is not None:
                written[event.id] = "call"
        if rows:
            await calls.insert_calls(conn, rows)

    return on_events


async def on_service_event(
    conn: asyncpg.Connection,
    event: Event,
    payload: ev.ServiceStarted | ev.ServiceHeartbeat | ev.ServiceStopping,
) -> bool:
    """Track a replica; True when the event is a heartbeat (not kept as activity)."""
    if isinstance(payload, ev.ServiceStopping):
        await store.mark_stopped(conn, payload.service, payload.instance, event.time)
        return False
    await store.upsert_instance(
        conn,
        service=payload.service,
        instance=payload.instance,
        version=payload.version,
        started_at=payload.started_at,
        seen_at=event.time,
        interval_s=payload.interval_s if isinstance(payload, ev.ServiceHeartbeat) else 5.0,
        stats=payload.stats if isinstance(payload, ev.ServiceHeartbeat) else None,
    )
    return isinstance(payload, ev.ServiceHeartbeat)


async def on_tool_called(conn: asyncpg.Connection, event: Event, default_policy: str) -> None:
    """Store the call with its arguments redacted per the current policy."""
    policy = await servers.get_setting(conn, records.ARGUMENTS_SETTING) or default_policy
    await calls.insert_call(conn, records.call_row(event, policy, store.parse_time(event.time)))


async def on_server_event(conn: asyncpg.Connection, event: Event) -> None:
    """Keep the server-status and owner projections current."""
    # ServerChanged, ServerToggled, ServerStatusChanged or ServerShared: each names its server
    change = ev.decode(event)
    if event.type == ev.SERVER_DELETED.name:
        await servers.delete_server(conn, change.server)
        return
    at = store.parse_time(event.time)
    shared = change.shared_with if isinstance(change, ev.ServerShared) else None
    await servers.upsert_owner(conn, change.server, change.server_id, event.org, shared, at)
    if isinstance(change, ev.ServerStatusChanged) and change.status:
        await servers.upsert_server_status(conn, change.server, change.status, event.org, at)


async def on_settings_updated(conn: asyncpg.Connection, event: Event) -> None:
    """Keep the argument policy current."""
    policy = records.arguments_policy(event)
    if policy is not None:
        await servers.put_setting(conn, records.ARGUMENTS_SETTING, policy)


@asynccontextmanager
async def running(
    bus: Bus,
    pool: asyncpg.Pool,
    default_policy: str,
    ack_wait_s: float = 30.0,
    lag_interval_s: float = 15.0,
    linger_s: float = 0.0,
) -> AsyncIterator[None]:
    """Consume while the service runs (the bus stops the consumer on close); export its lag."""
    written: dict[str, str] = {}
    batch = make_batch_handler(default_policy, written)
    one = make_handler(default_policy, written)
    bus.consume_batches(
        DURABLE,
        [subjects.ALL_EVENTS],
        metrics.measured_batch(transactional_batch(pool, "audit", DURABLE, batch), written),
        # a batch that fails is applied event by event: only the failing event stays behind
        metrics.measured(transactional(pool, "audit", DURABLE, one), written),
        ack_wait_s=ack_wait_s,
        linger_s=linger_s,
    )
    lag = asyncio.create_task(metrics.watch_lag(bus, DURABLE, lag_interval_s))
    try:
        yield
    finally:
        lag.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lag
