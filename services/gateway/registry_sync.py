"""Keep the routing table current: a registry snapshot at start, then registry events."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog

from libs.common import events as ev
from libs.common import rpc_types, subjects
from libs.common.bus import Bus
from libs.common.errors import ApiError
from libs.common.events import Event
from libs.common.rpc_types import PoliciesRequest, ServerView, SnapshotRequest
from services.gateway import metrics
from services.gateway.heap import Settler
from services.gateway.routing_table import RoutingTable
from services.gateway.upstreams.pool import UpstreamPool

log = structlog.get_logger()

PAGE = 50
POLICY_EVENTS = frozenset(t.name for t in (ev.POLICY_CREATED, ev.POLICY_UPDATED, ev.POLICY_DELETED))
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
        self.applied: dict[str, int] = {}  # server name -> the registry version its entry shows
        self.pulling: set[str] = set()  # servers being refetched now
        # ... the highest version an event announced meanwhile (inf: deleted)
        self.wanted: dict[str, float] = {}
        self.dropped: set[str] = set()  # ... which were deleted meanwhile
        self._pulls: set[asyncio.Task[None]] = set()
        self.policy_pulling: set[str] = set()  # orgs whose policies are being fetched now
        self.policy_again: set[str] = set()  # ... of which an event arrived meanwhile

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
        policy_set = await self.bus.call(rpc_types.REGISTRY_POLICIES, PoliciesRequest(), timeout=10)
        self.table.policies.replace(policy_set.orgs)
        self.table.replace(views)
        self.applied = {v.name: v.version for v in views}
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
        """Apply one registry event: drop the server, reload everything, or refetch the server.

        A server is refetched once per version: an event whose version the table shows already
        is old news."""
        if event.type == ev.SETTINGS_UPDATED.name:
            ev.SETTINGS_UPDATED.decode(event)
            await self.load()
            await self.on_change()
            return
        if event.type in POLICY_EVENTS:
            if event.org in self.policy_pulling:
                self.policy_again.add(event.org)  # one more fetch after the one in flight
            elif event.org is not None:
                self.policy_pulling.add(event.org)
                self._spawn(self._refetch_policies(event.org))
            return
        if event.type not in ev.SERVER_EVENTS and event.type not in ev.TOOL_EVENTS:
            return  # the registry's heartbeats, or a type this gateway does not know
        fact = ev.decode(event)  # a server's or a tool's change names its server and version
        name = fact.server
        if event.type == ev.SERVER_DELETED.name:
            if name in self.pulling:  # what that refetch brings back is stale
                self.dropped.add(name)
                self.wanted[name] = math.inf
            self._forget(name)
            await self._changed()
            return
        if fact.version <= self.applied.get(name, -1):
            return
        self.pull(name, fact.version)

    def pull(self, name: str, version: float = math.inf) -> None:
        """Refetch a server in the background, coalescing the events that arrive meanwhile.

        While one refetch of it runs, more events about it make one more refetch after it
        (unless it brought their version), however many."""
        if name in self.pulling:
            self.wanted[name] = max(self.wanted.get(name, -1), version)
            return
        self.pulling.add(name)
        self._spawn(self._pull(name))

    def _spawn(self, work: Awaitable[None]) -> None:
        """Run a refetch in the background (stop() cancels it)."""
        task = asyncio.ensure_future(work)
        self._pulls.add(task)
        task.add_done_callback(self._pulls.discard)

    async def _refetch_policies(self, org: str) -> None:
        """Fetch one org's policies and approvals until no event about them arrived meanwhile.

        One fetch at a time per org, so an older answer never lands after a newer one."""
        try:
            while True:
                self.policy_again.discard(org)
                try:
                    reply = await self.bus.call(
                        rpc_types.REGISTRY_POLICIES, PoliciesRequest(orgs=[org]), timeout=10
                    )
                except ApiError as exc:
                    log.warning("registry_policies_refetch_failed", org=org, error=exc.message)
                    return
                self.table.policies.update(reply.orgs)
                self.table.policies_changed()
                log.info("org_policies_applied", org=org)
                await self._changed()
                if org not in self.policy_again:
                    return
        finally:
            self.policy_pulling.discard(org)
            self.policy_again.discard(org)

    async def _pull(self, name: str) -> None:
        """Refetch `name` until no event about it arrived during the last refetch."""
        try:
            while True:
                self.wanted.pop(name, None)
                self.dropped.discard(name)
                await self._refetch(name)
                if self.wanted.get(name, -1) <= self.applied.get(name, -1):
                    return
        except Exception:
            log.exception("registry_refetch_crashed", server=name)
        finally:
            self.pulling.discard(name)
            self.wanted.pop(name, None)
            self.dropped.discard(name)

    async def _refetch(self, name: str) -> None:
        """Fetch one server's view and put it in the table (or take it out)."""
        try:
            views, _ = await self.fetch([name])
        except ApiError as exc:
            log.warning("registry_refetch_failed", server=name, error=exc.message)
            return
        if name in self.dropped:  # deleted while the view was on its way: fetch it again
            return
        view = next((v for v in views if v.name == name), None)
        if view is None:
            self._forget(name)
        else:
            self.table.upsert(view)
            self.applied[name] = view.version
            self.pool.retain(self.table.pool_keys)  # a source gone or its url changed
        await self._changed()

    def _forget(self, name: str) -> None:
        """Take a server out of the table and the pool."""
        self.table.remove(name)
        self.pool.forget(name)
        self.applied.pop(name, None)

    async def _changed(self) -> None:
        """Tell the metrics, the heap and the sessions that the table changed."""
        metrics.ROUTING_TOOLS.set(len(self.table.by_public))
        self.heap.soon()
        await self.on_change()

    async def stop(self) -> None:
        """Cancel the refetches in flight."""
        for task in list(self._pulls):
            task.cancel()
        for task in list(self._pulls):
            with contextlib.suppress(asyncio.CancelledError):
                await task


@asynccontextmanager
async def running(sync: RegistrySync) -> AsyncIterator[None]:
    """Follow registry events and keep the table loaded while the service runs."""
    await sync.bus.follow(subjects.REGISTRY_EVENTS, sync.on_event)
    task = asyncio.create_task(sync.run())
    try:
        yield
    finally:
        sync.heap.cancel()
        await sync.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
