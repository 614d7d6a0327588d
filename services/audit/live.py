"""The live hub behind /ws/events and /ws/health_status: NATS events relayed to clients.

A little over 300 lines: the hub is one object (clients, filters, live subjects) and its
subscriptions, the services' log lines among them, belong with it."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import structlog

from libs.common import events as ev
from libs.common import subjects, tenancy
from libs.common.authn import Principal, ServerRef
from libs.common.bus import Bus
from libs.common.events import TOOL_CALLED, Event
from services.audit import health, monitoring, records, store
from services.audit.store import calls, logs, servers
from services.audit.visibility import scope_for

log = structlog.get_logger()

CHANNELS = ("server-status", "health", "server-logs", "activity", "tool-calls", "monitoring",
            "alerts")  # fmt: skip
ADMIN_CHANNELS = ("monitoring", "alerts")
FILTER_ALIASES = {"serverId": "server", "server_name": "server", "tool_name": "tool"}
SLOW_CLOSE_CODE = 4008


def channel_of(event: Event) -> str | None:
    """The channel an event is relayed on (None: not relayed; heartbeats feed `health`)."""
    if event.type == TOOL_CALLED.name:
        return "tool-calls"
    if event.type in ev.SERVER_EVENTS:
        return "server-status"
    if event.type in ev.ALERT_EVENTS:
        return "alerts"
    if ev.platform_event(event.type) is not None:
        return None
    return "activity"


def may_see(
    principal: Principal,
    channel: str,
    event: Event | None,
    data: dict[str, Any],
    owner: ServerRef | None = None,
) -> bool:
    """Only what the principal may see: admins all, org admins their org, members their own.

    A server's status and logs go only to those who may read it through its own org (`owner`:
    whose the server is; unknown: platform admins only)."""
    if principal.is_platform_admin:
        return True
    if channel in ADMIN_CHANNELS:
        return False
    if channel == "health":
        return True
    scope = scope_for(principal)
    if channel in ("server-status", "server-logs"):
        return owner is not None and tenancy.may(principal, "read", owner, via_share=False)
    if channel == "tool-calls":
        return scope.allows(data.get("org") or (event and event.org), data.get("principal_id"))
    return event is not None and scope.allows(event.org, event.actor)


def matches(filters: dict[str, Any], data: dict[str, Any]) -> bool:
    """True when every filter equals the message's field (serverId is an alias of server)."""
    for key, want in filters.items():
        if data.get(FILTER_ALIASES.get(key, key)) != want:
            return False
    return True


@dataclass(eq=False)
class Client:
    """One WebSocket: its principal (None for /ws/health_status), subscriptions and queue."""

    principal: Principal | None
    queue: asyncio.Queue[bytes]
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    slow: asyncio.Event = field(default_factory=asyncio.Event)
    health_only: bool = False

    def offer(self, message: dict[str, Any]) -> None:
        """Queue a message; a full queue marks the client slow (it is then closed)."""
        try:
            self.queue.put_nowait(orjson.dumps(message, default=str))
        except asyncio.QueueFull:
            self.slow.set()


class Hub:
    """Follows NATS, keeps the clients, computes the health map and monitoring numbers."""

    def __init__(self, bus: Bus, pool: asyncpg.Pool, settings: Any) -> None:
        self.bus = bus
        self.pool = pool
        self.settings = settings
        self.clients: set[Client] = set()
        self.health: dict[str, Any] | None = None
        self.owners: dict[str, ServerRef] = {}  # whose each server is, by name
        # the arguments policy the store applies, as this replica last heard it
        self.arguments_policy: str = settings.arguments
        self._tasks: list[asyncio.Task] = []
        self._subs: list[Any] = []

    async def start(self) -> None:
        """Subscribe to events and live logs; start the health and monitoring loops."""
        async with self.pool.acquire() as conn:
            for row in await servers.list_owners(conn):
                self.owners[row["server"]] = owner_ref(row)
            stored = await servers.get_setting(conn, records.ARGUMENTS_SETTING)
        self.arguments_policy = stored or self.settings.arguments
        await self.bus.follow(subjects.ALL_EVENTS, self.on_event)
        sub = await self.bus.listen(subjects.SANDBOX_LOGS, self.on_log, owned=False)
        self._subs.append(sub)
        # each service's own WARNING+ lines: one audit replica (queue group) stores each
        sub = await self.bus.listen(
            subjects.SERVICE_LOGS, self.on_service_log, queue="audit", owned=False
        )
        self._subs.append(sub)
        self._tasks.append(asyncio.create_task(self._health_loop()))
        self._tasks.append(asyncio.create_task(self._monitoring_loop()))

    async def stop(self) -> None:
        """Stop the loops and the log subscription."""
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def register(self, principal: Principal | None, health_only: bool = False) -> Client:
        """A new client with a bounded queue."""
        client = Client(principal, asyncio.Queue(self.settings.ws_queue), health_only=health_only)
        self.clients.add(client)
        return client

    def unregister(self, client: Client) -> None:
        """Forget a client."""
        self.clients.discard(client)

    def publish(self, channel: str, data: dict[str, Any], event: Event | None = None) -> None:
        """Send to every client subscribed to `channel` that may see it and whose filters match."""
        message = {"type": "event", "channel": channel, "data": data}
        if event is not None:
            message |= {"event_type": event.type, "id": event.id, "time": event.time}
        for client in list(self.clients):
            if client.health_only:
                continue
            filters = client.subscriptions.get(channel)
            if filters is None or client.principal is None:
                continue
            owner = self.owners.get(str(data.get("server") or ""))
            if matches(filters, data) and may_see(client.principal, channel, event, data, owner):
                client.offer(message)

    def follow_owner(self, event: Event) -> None:
        """Keep whose each server is current from registry server events."""
        if event.type not in ev.SERVER_EVENTS:
            return
        # ServerChanged, ServerToggled, ServerStatusChanged or ServerShared: each names its server
        change = ev.decode(event)
        name = change.server
        if event.type == ev.SERVER_DELETED.name:
            self.owners.pop(name, None)
            return
        known = self.owners.get(name)
        self.owners[name] = ServerRef(
            id=change.server_id or (known.id if known else ""),
            name=name,
            org=event.org,
            shared_with=frozenset(change.shared_with)
            if isinstance(change, ev.ServerShared)
            else (known.shared_with if known else frozenset()),
        )

    def servers_for(self, principal: Principal | None, statuses: dict[str, Any]) -> dict:
        """The server statuses a client may see.

        Nothing for the public; for the others, those they may read through their own org."""
        if principal is None:
            return {}
        if principal.is_platform_admin:
            return statuses
        return {
            name: status
            for name, status in statuses.items()
            if (ref := self.owners.get(name)) is not None
            and tenancy.may(principal, "read", ref, via_share=False)
        }

    def health_for(self, client: Client, current: dict[str, Any]) -> dict[str, Any]:
        """The health map as `client` may see it (docs/TENANCY.md: no names for the public)."""
        return {**current, "servers": self.servers_for(client.principal, current["servers"])}

    async def on_event(self, event: Event) -> None:
        """Relay an event on its channel (a tool call's arguments redacted as the store does)."""
        self.follow_owner(event)
        channel = channel_of(event)
        if channel is None:
            return
        policy = records.arguments_policy(event)
        if policy is not None:
            self.arguments_policy = policy
        if channel == "tool-calls":
            data = records.tool_call_live(event, self.arguments_policy)
        else:
            data = dict(records.without_tool_changes(event).data)
        self.publish(channel, data, event)
        for fact in records.tool_facts(event):  # a refresh's tools, as activity one by one
            self.publish(channel_of(fact) or "activity", dict(fact.data), fact)

    async def on_log(self, msg: Any) -> None:
        """Relay a hosted process's log line from `live.sandbox.logs.<server>`."""
        server = self.bus.unprefix(msg.subject).split(".", 3)[-1]
        try:
            doc = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            doc = {"line": msg.data.decode(errors="replace")}
        data = doc if isinstance(doc, dict) else {"line": doc}
        self.publish("server-logs", {"server": server, **data})

    async def on_service_log(self, msg: Any) -> None:
        """Keep a service's own log line (`live.logs.<service>`) in the bounded table."""
        source = self.bus.unprefix(msg.subject).split(".", 2)[-1]
        try:
            doc = orjson.loads(msg.data)
            line = {
                "time": store.parse_time(doc["time"]),
                "level": doc["level"] if doc["level"] in logs.LEVELS else "error",
                "source": source,  # the subject names the service: its NATS user may only send it
                "instance": str(doc.get("instance") or "")[:200] or None,
                "event": str(doc["event"])[:500],
                "fields": doc["fields"] if isinstance(doc.get("fields"), dict) else {},
            }
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return  # not a log line: nothing to keep (and no log, which would loop back)
        try:
            async with self.pool.acquire() as conn:
                await logs.insert_line(conn, line, self.settings.system_logs_kept)
        except Exception as exc:
            log.info("system_log_not_stored", error=type(exc).__name__)

    async def health_map(self) -> dict[str, Any]:
        """Services and servers with their status (what /ws/health_status sends)."""
        async with self.pool.acquire() as conn:
            rows = await store.list_instances(conn, datetime.now(UTC) - timedelta(hours=1))
            known = await servers.list_server_status(conn)
        platform = health.platform_health(rows)
        return {
            "status": platform["status"],
            "services": {s["service"]: s["status"] for s in platform["services"]},
            "servers": {r["server"]: r["status"] for r in known},
        }

    async def _health_loop(self) -> None:
        """Recompute the health map; on a change send it to `health` subscribers."""
        while True:
            try:
                current = await self.health_map()
                if current != self.health:
                    self.health = current
                    for client in list(self.clients):
                        if client.health_only or "health" in client.subscriptions:
                            data = self.health_for(client, current)
                            client.offer({"type": "health", "channel": "health", "data": data})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("audit_health_map_failed", error=str(exc))
            await asyncio.sleep(self.settings.health_interval_s)

    async def _monitoring_loop(self) -> None:
        """Every interval, the monitoring numbers to `monitoring` subscribers (admins)."""
        while True:
            try:
                if any("monitoring" in c.subscriptions for c in self.clients):
                    now = datetime.now(UTC)
                    async with self.pool.acquire() as conn:
                        rows = await servers.list_server_status(conn)
                        totals = await calls.rollup_totals(conn, now - timedelta(minutes=5), now)
                    data = {
                        "servers": monitoring.server_counts(rows),
                        "performance": monitoring.performance(totals, 5),
                    }
                    self.publish("monitoring", data)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("audit_monitoring_push_failed", error=str(exc))
            await asyncio.sleep(self.settings.monitoring_interval_s)


def owner_ref(row: Any) -> ServerRef:
    """A ServerRef from an `audit.servers` row."""
    return ServerRef(
        id=str(row["server_id"] or ""),
        name=row["server"],
        org=row["org"],
        owner_team=row["owner_team"],
        shared_with=frozenset(row["shared_with"] or ()),
    )
