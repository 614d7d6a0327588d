"""Keep the routing table current: a registry snapshot at start, then registry events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog

from libs.common import events as ev
from libs.common import rpc_types, subjects
from libs.common.bus import Bus
from libs.common.errors import ApiError
from libs.common.events import Event
from libs.common.rpc_types import ServerView, SnapshotRequest
from services.gateway import metrics
from services.gateway.heap import Settler
from services.gateway.routing_table import RoutingTable
from services.gateway.upstreams.pool import UpstreamPool

log = structlog.get_logger()

PAGE = 50
Changed = Callable[[], Awaitable[None]]


class RegistrySync:
    """Loads the routing table from rpc.registry.snapshot and applies registry events."""

    def __init__(
        self,
        bus: Bus,
        table: RoutingTable,
        pool: UpstreamPool,
        on_change: Changed,
        resync_s: float,
        settle_heap: bool = True,
    ) -> None:
        self.bus = bus
        self.table = table
        self.pool = pool
        self.on_change = on_change
        self.resync_s = resync_s
        self.loaded = asyncio.Event()
        self.heap = Settler(enabled=settle_heap)  # keeps the table out of full GC passes

    async def fetch(
        self, names: list[str] | None = None
    ) -> tuple[list[ServerView], dict[str, Any]]:
        """Page through the snapshot (optionally for some names only)."""
        views: list[ServerView] = []
        settings: dict[str, Any] = {}
        offset: int | None = 0
        while offset is not None:
            request = SnapshotRequest(names=names, offset=offset, limit=PAGE)
            page = await self.bus.call(rpc_types.REGISTRY_SNAPSHOT, request, timeout=10)
            views.extend(page.servers)
            settings = page.settings or settings
            offset = page.next_offset
        return views, settings

    async def load(self) -> None:
        """Replace the table with a full snapshot."""
        views, settings = await self.fetch()
        self.table.replace(views)
        self.table.settings = settings
        self.pool.allow_also(settings.get("ssrf_allowlist"))
        self.pool.retain(self.table.pool_keys)
        metrics.ROUTING_TOOLS.set(len(self.table.by_public))
        self.heap.soon()
        log.info("routing_table_loaded", servers=len(views), tools=len(self.table.by_public))

    async def run(self) -> None:
        """Load until the registry answers, then resync periodically (events may be missed)."""
        delay = 0.2
        while True:
            try:
                await self.load()
                if self.loaded.is_set():
                    await self.on_change()
                self.loaded.set()
                await asyncio.sleep(self.resync_s)
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except ApiError as exc:
                log.warning("registry_snapshot_retrying", error=exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def on_event(self, event: Event) -> None:
        """Apply one registry event: refetch the server, drop it, or reload everything."""
        if event.type == ev.SETTINGS_UPDATED.name:
            ev.SETTINGS_UPDATED.decode(event)
            await self.load()
            await self.on_change()
            return
        if event.type not in ev.SERVER_EVENTS and event.type not in ev.TOOL_EVENTS:
            return  # the registry's heartbeats, or a type this gateway does not know
        name = ev.decode(event).server  # a server's or a tool's change names its server
        if event.type == ev.SERVER_DELETED.name:
            self.table.remove(name)
            self.pool.forget(name)
        else:
            try:
                views, _ = await self.fetch([name])
            except ApiError as exc:
                log.warning("registry_refetch_failed", server=name, error=exc.message)
                return
            view = next((v for v in views if v.name == name), None)
            if view is None:
                self.table.remove(name)
                self.pool.forget(name)
            else:
                self.table.upsert(view)
                self.pool.retain(self.table.pool_keys)  # a source gone or its url changed
        metrics.ROUTING_TOOLS.set(len(self.table.by_public))
        self.heap.soon()
        await self.on_change()


@asynccontextmanager
async def running(sync: RegistrySync) -> AsyncIterator[None]:
    """Follow registry events and keep the table loaded while the service runs."""
    await sync.bus.follow(subjects.REGISTRY_EVENTS, sync.on_event)
    task = asyncio.create_task(sync.run())
    try:
        yield
    finally:
        sync.heap.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
