"""Events the audit service consumes: everything on events.>, durably and once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import structlog

from libs.common import subjects
from libs.common.bus import Bus, transactional
from libs.common.events import TOOL_CALLED, Event
from services.audit import records, store
from services.audit.store import calls, servers

log = structlog.get_logger()

DURABLE = "audit-store"
DELETED = "registry.server.deleted"
SHARE_TYPES = ("registry.server.shared", "registry.server.unshared")


def make_handler(default_policy: str):  # noqa: ANN201 - a TxHandler
    """The transactional handler, with the env's argument policy as the default."""

    async def on_event(conn: asyncpg.Connection, event: Event) -> None:
        """Heartbeats update replicas, tool calls become records, the rest activity."""
        kind = event.type.rsplit(".", 2)
        if len(kind) == 3 and kind[1] == "service":
            if await on_service_event(conn, event, kind[2]):
                return
        if event.type == TOOL_CALLED.name:
            await on_tool_called(conn, event, default_policy)
            return
        if event.type.startswith("registry."):
            await on_registry_event(conn, event)
        shown = records.without_tool_changes(event)
        await store.insert_event(conn, shown, **records.activity_fields(shown))
        for fact in records.tool_facts(event):  # a refresh's tools, one activity record each
            await store.insert_event(conn, fact, **records.activity_fields(fact))

    return on_event


async def on_service_event(conn: asyncpg.Connection, event: Event, verb: str) -> bool:
    """Track a replica; True when the event is a heartbeat (not kept as activity)."""
    data = event.data
    if verb in ("heartbeat", "started"):
        await store.upsert_instance(
            conn,
            service=data["service"],
            instance=data["instance"],
            version=data.get("version", ""),
            started_at=data.get("started_at", event.time),
            seen_at=event.time,
            interval_s=float(data.get("interval_s", 5.0)),
        )
    elif verb == "stopping":
        await store.mark_stopped(conn, data["service"], data["instance"], event.time)
    return verb == "heartbeat"


async def on_tool_called(conn: asyncpg.Connection, event: Event, default_policy: str) -> None:
    """Store the call with its arguments redacted per the current policy."""
    policy = await servers.get_setting(conn, records.ARGUMENTS_SETTING) or default_policy
    await calls.insert_call(conn, records.call_row(event, policy, store.parse_time(event.time)))


async def on_registry_event(conn: asyncpg.Connection, event: Event) -> None:
    """Keep the server-status projection and the argument policy current."""
    data = event.data
    server = data.get("server") or data.get("name")
    at = store.parse_time(event.time)
    if event.type.startswith("registry.server.") and server and event.type != DELETED:
        shared = data.get("shared_with") if event.type in SHARE_TYPES else None
        await servers.upsert_owner(conn, server, data.get("server_id"), event.org, shared, at)
    if event.type in records.SERVER_STATUS_TYPES and server and data.get("status"):
        await servers.upsert_server_status(conn, server, str(data["status"]), event.org, at)
    elif event.type == DELETED and server:
        await servers.delete_server(conn, server)
    elif event.type == "registry.settings.updated":
        policy = records.arguments_policy(event)
        if policy is not None:
            await servers.put_setting(conn, records.ARGUMENTS_SETTING, policy)


@asynccontextmanager
async def running(
    bus: Bus, pool: asyncpg.Pool, default_policy: str, ack_wait_s: float = 30.0
) -> AsyncIterator[None]:
    """Consume while the service runs (the bus stops the consumer on close)."""
    handler = make_handler(default_policy)
    bus.consume(
        DURABLE,
        [subjects.ALL_EVENTS],
        transactional(pool, "audit", DURABLE, handler),
        ack_wait_s=ack_wait_s,
    )
    yield
