"""Task status notifications from upstreams, relayed with wrapped task ids.

- 2025-11-25 (`SessionStatus`): a session upstream sends `notifications/tasks/status` on its
  session's standalone stream (`GET` on its URL, shared with resource updates:
  `session_stream.py`). The replica whose upstream session created a
  task remembers (in memory, until the task ends or its ttl passes) which client session created
  it, keeps that upstream stream open while it has such tasks, and sends each status
  notification, its `taskId` wrapped, to the client session's stream through the relay (whichever
  replica holds that stream). An upstream without a standalone stream (405) is not followed.
- 2026-07-28 (`TaskListen`): a client's `subscriptions/listen` with `taskIds` (wrapped ids)
  opens, for as long as the client's stream lasts, one upstream `subscriptions/listen` per server
  with the upstream ids (the extension declared); the client's acknowledgement names the ids the
  upstreams acknowledged, and each `notifications/tasks` goes onto the client's stream with its
  id wrapped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from services.gateway.jsonrpc import RpcFault
from services.gateway.routing_table import RoutingTable, ServerEntry
from services.gateway.upstreams.listen import ListenRefused, listen_messages
from services.gateway.upstreams.pool import UpstreamPool
from services.gateway.upstreams.session_stream import NoSessionStream, stream_of
from services.gateway.upstreams.streamable_http import HttpUpstream

if TYPE_CHECKING:
    from services.gateway.call_context import CallContext
    from services.gateway.clients.relay import Relay

log = structlog.get_logger()

STATUS = "notifications/tasks/status"
MODERN_STATUS = "notifications/tasks"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
RETRY_S = 1.0
READY_S = 5.0
WATCH_MAX_S = 24 * 3600.0  # a task with no (or a longer) ttl is followed this long at most
Unwrap = Callable[[Any, "CallContext"], tuple[ServerEntry, str]]


def current(table: RoutingTable, route: ServerEntry) -> ServerEntry | None:
    """`route` while the routing table still has it unchanged.

    Else its tasks are gone with it; asking the pool for a stale entry would replace the live
    connection."""
    server = table.servers.get(route.name)
    if server is None or server.id != route.id:
        return None
    if route.key != route.name:
        server = next((s for s in server.sources if s.key == route.key), None)
    return server if server is not None and server.fingerprint == route.fingerprint else None


@dataclass
class Watched:
    """A task created through this replica's upstream session, and who wants its status."""

    session_id: str
    wrapped: str
    until: float  # monotonic deadline


class SessionStatus:
    """This replica's followed session-upstream streams (2025-11-25 task status)."""

    def __init__(self, pool: UpstreamPool, table: RoutingTable, relay: Relay | None) -> None:
        self.pool = pool
        self.table = table
        self.relay = relay  # delivers to client session streams (any replica's)
        self.watched: dict[str, dict[str, Watched]] = {}  # pool key -> upstream task id -> who
        self.entries: dict[str, ServerEntry] = {}
        self.followers: dict[str, asyncio.Task[None]] = {}

    def watch(
        self, route: ServerEntry, task_id: str, session_id: str, wrapped: str, ttl_ms: Any
    ) -> None:
        """Relay the status of an upstream task to the client session that created it."""
        ttl_s = ttl_ms / 1000 if isinstance(ttl_ms, int | float) and ttl_ms > 0 else WATCH_MAX_S
        until = time.monotonic() + min(ttl_s, WATCH_MAX_S)
        self.watched.setdefault(route.key, {})[task_id] = Watched(session_id, wrapped, until)
        self.entries[route.key] = route
        follower = self.followers.get(route.key)
        if follower is None or follower.done():
            task = asyncio.get_running_loop().create_task(self._follow(route.key))
            self.followers[route.key] = task

    async def stop(self) -> None:
        """Close every followed stream."""
        for task in self.followers.values():
            task.cancel()
        for task in self.followers.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.followers.clear()

    def _live(self, key: str) -> float | None:
        """Seconds until the first watched task of `key` expires (expired ones dropped).

        None when none is left."""
        now = time.monotonic()
        held = {k: w for k, w in self.watched.get(key, {}).items() if w.until > now}
        if not held:
            self.watched.pop(key, None)
            return None
        self.watched[key] = held
        return min(w.until for w in held.values()) - now

    async def _follow(self, key: str) -> None:
        """Keep the upstream session's stream open while it has watched tasks."""
        while (left := self._live(key)) is not None:
            entry = self.entries.get(key)
            entry = current(self.table, entry) if entry is not None else None
            upstream = self.pool.upstream(entry) if entry is not None else None
            if not isinstance(upstream, HttpUpstream):
                self.watched.pop(key, None)
                break
            try:
                if not upstream.connected:
                    await upstream.connect()
                async with asyncio.timeout(left):  # wake to drop expired tasks
                    if await self._read(upstream, key):
                        log.info("task_status_stream_refused", server=upstream.server.name)
                        self.watched.pop(key, None)
                        break
            except Exception as exc:  # transport errors and garbage: reopen
                log.info("task_status_stream_reconnecting", server=key, error=repr(exc))
            if self.watched.get(key):
                await asyncio.sleep(RETRY_S)  # backoff before reopening, not for correctness
        self.followers.pop(key, None)
        self.entries.pop(key, None)

    async def _read(self, upstream: HttpUpstream, key: str) -> bool:
        """Listen on the session's stream until it ends or nothing is watched.

        The stream is shared with resource updates (`session_stream.py`). True when the upstream
        offers no stream (405)."""
        unwatched = asyncio.Event()

        async def on_message(msg: dict[str, Any]) -> None:
            if msg.get("method") == STATUS:
                await self._deliver(key, msg.get("params"))
                if not self.watched.get(key):
                    unwatched.set()

        shared = stream_of(upstream)
        try:
            token, _, reader = await shared.attach(on_message)
        except NoSessionStream as exc:
            if exc.status == 404:  # the session expired: the next call initialises again
                upstream.connected = False
            return exc.status == 405
        waiter = asyncio.ensure_future(unwatched.wait())
        try:
            await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            shared.detach(token)
        return False

    async def _deliver(self, key: str, params: Any) -> None:
        """One status notification to the session that created the task."""
        if not isinstance(params, dict) or not isinstance(params.get("taskId"), str):
            return
        task_id: str = params["taskId"]
        watched = self.watched.get(key, {}).get(task_id)
        if watched is None:
            return
        if params.get("status") in TERMINAL:
            self.watched[key].pop(task_id, None)
        note = {"jsonrpc": "2.0", "method": STATUS, "params": {**params, "taskId": watched.wrapped}}
        if self.relay is not None:
            await self.relay.send(watched.session_id, note)


class TaskListen:
    """The task part of one client's `subscriptions/listen` (2026-07-28)."""

    def __init__(
        self,
        unwrap: Unwrap,
        table: RoutingTable,
        pool: UpstreamPool,
        ctx: CallContext,
        out: asyncio.Queue[dict[str, Any]],
    ) -> None:
        self.unwrap = unwrap  # a wrapped task id -> (connection, upstream id), for the caller
        self.table = table
        self.pool = pool
        self.ctx = ctx
        self.out = out  # params of `notifications/tasks`, ids wrapped
        self.honored: set[str] = set()
        self._streams: list[asyncio.Task[None]] = []

    async def open(self, wanted: list[Any]) -> list[str]:
        """Follow the wanted tasks upstream; the wrapped ids the upstreams acknowledged."""
        groups: dict[str, tuple[ServerEntry, dict[str, str]]] = {}
        for wrapped in wanted:
            try:
                route, task_id = self.unwrap(wrapped, self.ctx)
            except RpcFault:
                continue
            groups.setdefault(route.key, (route, {}))[1][task_id] = wrapped
        ready = []
        for route, ids in groups.values():
            acked = asyncio.Event()
            ready.append(acked)
            task = asyncio.get_running_loop().create_task(self._follow(route, ids, acked))
            self._streams.append(task)
        if ready:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(READY_S):
                    await asyncio.gather(*(event.wait() for event in ready))
        return [w for w in wanted if isinstance(w, str) and w in self.honored]

    async def close(self) -> None:
        """Close the upstream streams."""
        for task in self._streams:
            task.cancel()
        for task in self._streams:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _follow(self, route: ServerEntry, ids: dict[str, str], acked: asyncio.Event) -> None:
        """One upstream listen stream for `ids` (upstream id -> wrapped), reopened if it drops."""
        while True:
            live = current(self.table, route)
            upstream = self.pool.upstream(live) if live is not None else None
            if not isinstance(upstream, HttpUpstream):
                acked.set()
                return
            try:
                if not upstream.connected:
                    await upstream.connect()
                if not upstream.modern or await self._listen(upstream, ids, acked):
                    acked.set()  # no listen there, or refused: nothing honored
                    return
            except Exception as exc:  # transport errors and garbage: reopen
                log.info("task_listen_reconnecting", server=route.name, error=repr(exc))
            await asyncio.sleep(RETRY_S)  # backoff before reopening, not for correctness

    async def _listen(
        self, upstream: HttpUpstream, ids: dict[str, str], acked: asyncio.Event
    ) -> bool:
        """Read one upstream listen stream until it ends; True when the upstream refused it."""
        wanted = {"taskIds": sorted(ids)}
        capabilities = {"extensions": {"io.modelcontextprotocol/tasks": {}}}
        messages = listen_messages(upstream, wanted, "sb-tasks", capabilities)
        try:
            async with contextlib.aclosing(messages) as msgs:
                async for msg in msgs:
                    params = msg.get("params") if isinstance(msg.get("params"), dict) else {}
                    if msg.get("method") == "notifications/subscriptions/acknowledged":
                        honored = (params.get("notifications") or {}).get("taskIds") or []
                        self.honored.update(
                            ids[t] for t in honored if isinstance(t, str) and t in ids
                        )
                        acked.set()
                    elif msg.get("method") == MODERN_STATUS and params.get("taskId") in ids:
                        note = {k: v for k, v in params.items() if k != "_meta"}
                        note["taskId"] = ids[params["taskId"]]
                        if not self.out.full():  # a client that stopped reading loses some
                            self.out.put_nowait(note)
        except ListenRefused:  # an error answer (e.g. -32021, -32601)
            return True
        return False
