"""Resource subscriptions: upstream `notifications/resources/updated` relayed to clients.

Per replica, for each upstream with subscribed resources:
- 2026-07-28 upstreams: one `subscriptions/listen` stream carrying `resourceSubscriptions` =
  every upstream URI a client of this replica subscribed to on that server; when the set changes
  the stream is reopened with the new set, and when it drops it is reopened after a short backoff.
- Session-based upstreams (2025-era Streamable HTTP, HTTP+SSE): the pooled upstream session
  subscribes to each URI once (`resources/subscribe`, `resources/unsubscribe` when its last
  follower goes) and its session stream carries the updates (`session_watch.py`).
Each update goes to the callbacks registered for that (server, URI): a legacy session's callback
sends `notifications/resources/updated` (the `switchboard://` URI, or the upstream's own on
`/mcp/servers/{path}`) over the session's stream through the relay, so it works whichever
replica took the `resources/subscribe`; a `subscriptions/listen` stream's callback writes to
that stream. `resources/unsubscribe` is broadcast on `live.gateway.resource.unsubscribe` so the
replica holding the subscription drops it; a DELETEd session (`live.gateway.session.ended`)
drops all of its subscriptions. An upstream that does not declare `resources.subscribe`, and
stdio or code servers, cannot be followed: subscribing there is -32602.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog

from libs.common import subjects
from libs.common.bus import Bus
from services.gateway.features.session_watch import SessionFollower
from services.gateway.jsonrpc import INVALID_PARAMS, RpcFault
from services.gateway.routing_table import RoutingTable, ServerEntry
from services.gateway.upstreams.legacy_sse import SseUpstream
from services.gateway.upstreams.listen import ListenRefused, listen_messages
from services.gateway.upstreams.pool import UpstreamPool
from services.gateway.upstreams.streamable_http import HttpUpstream
from services.gateway.upstreams.transport import TransportFailure

log = structlog.get_logger()

SERVER_VIEW = "@servers"  # owner suffix of a session's subscriptions on /mcp/servers/{path}
RETRY_S = 1.0
SWEEP_S = 60.0
READY_S = 5.0
Callback = Callable[[str], Awaitable[None]]  # receives the upstream URI that changed


class ResourceWatch:
    """This replica's upstream resource subscriptions and who wants their updates."""

    def __init__(
        self, pool: UpstreamPool, bus: Bus | None, table: RoutingTable | None = None
    ) -> None:
        self.pool = pool
        self.bus = bus
        self.table = table
        self.callbacks: dict[tuple[str, str], dict[Any, Callback]] = {}
        self.streams: dict[str, tuple[frozenset[str], asyncio.Task[None]]] = {}
        self.ready: dict[str, asyncio.Event] = {}  # set once the upstream acknowledged the set
        self.followers: dict[str, SessionFollower] = {}  # session-based upstreams
        self.entries: dict[str, ServerEntry] = {}
        # a legacy session's subscriptions end with it even when its client just goes away:
        # owner -> when its session id expires (wall clock); swept every SWEEP_S
        self.expiry: dict[Any, float] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._sub: Any = None
        self._ended: Any = None

    async def start(self) -> None:
        """Follow unsubscriptions made on other replicas; sweep expired sessions' ones."""
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        if self.bus is None:
            return

        async def on_msg(msg: Any) -> None:
            try:
                doc = orjson.loads(msg.data)
                if "server" not in doc:  # a session gone: everything it followed
                    self.drop_session(doc["owner"])
                else:
                    self.remove(doc["server"], doc["uri"], doc["owner"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.warning("bad_unsubscribe_message")

        async def on_ended(msg: Any) -> None:  # a DELETEd session follows nothing any more
            self.drop_session(msg.data.decode(errors="replace"))

        self._sub = await self.bus.listen(
            subjects.GATEWAY_RESOURCE_UNSUBSCRIBE, on_msg, owned=False
        )
        self._ended = await self.bus.listen(subjects.GATEWAY_SESSION_ENDED, on_ended, owned=False)

    async def stop(self) -> None:
        """Close every upstream stream."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for _, task in self.streams.values():
            task.cancel()
        self.streams.clear()
        for follower in self.followers.values():
            await follower.stop()
        self.followers.clear()
        for sub in (self._sub, self._ended):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def add(
        self,
        server: ServerEntry,
        uri: str,
        owner: Any,
        callback: Callback,
        expires_at: float | None = None,
    ) -> None:
        """Deliver updates of `uri` on `server` to `callback` (one per owner).

        Until `expires_at` (wall clock) when given."""
        upstream = self.pool.upstream(server)
        if isinstance(upstream, HttpUpstream | SseUpstream) and not upstream.connected:
            try:
                await upstream.connect()
            except TransportFailure as exc:
                raise RpcFault(
                    INVALID_PARAMS, f"Cannot subscribe on {server.name!r}: {exc}"
                ) from None
        if not isinstance(upstream, HttpUpstream | SseUpstream):
            raise RpcFault(
                INVALID_PARAMS,
                f"Resource subscriptions on {server.name!r} are not supported (stdio or code).",
                {"server": server.name},
            )
        if (upstream.capabilities.get("resources") or {}).get("subscribe") is not True:
            raise RpcFault(
                INVALID_PARAMS,
                f"The server {server.name!r} does not offer resource subscriptions "
                "(no resources.subscribe capability).",
                {"server": server.name},
            )
        self.entries[server.name] = server
        self.callbacks.setdefault((server.name, uri), {})[owner] = callback
        if expires_at is not None:
            self.expiry[owner] = expires_at
        await self._follow_as(server.name, upstream.modern)
        self._refresh(server.name)
        try:  # answer once the upstream follows the URI, so no update in between is missed
            async with asyncio.timeout(READY_S):
                follower = self.followers.get(server.name)
                if follower is not None:
                    await follower.settled(uri)
                else:
                    await self.ready[server.name].wait()
        except TimeoutError:
            log.warning("resource_watch_not_acknowledged", server=server.name)
        except RpcFault:  # the upstream refused the URI, or offers no stream for updates
            self.remove(server.name, uri, owner)
            raise

    async def _follow_as(self, server: str, modern: bool) -> None:
        """Follow `server` by its generation: a listen stream, or its session (a follower)."""
        if modern:
            stale = self.followers.pop(server, None)  # it spoke an earlier revision before
            if stale is not None:
                await stale.stop()
            return
        held = self.streams.pop(server, None)
        if held is not None:
            held[1].cancel()
        if server not in self.followers:
            self.followers[server] = SessionFollower(self, server)

    def entry(self, server: str) -> ServerEntry | None:
        """The server's current entry (the routing table's when known); None when it is gone."""
        if self.table is None:
            return self.entries.get(server)
        return self.table.servers.get(server)

    def uris(self, server: str) -> frozenset[str]:
        """Every upstream URI followed on `server` here."""
        return frozenset(uri for (name, uri) in self.callbacks if name == server)

    async def deliver(self, server: str, uri: str) -> None:
        """Hand one update to everyone following it here."""
        for callback in list(self.callbacks.get((server, uri), {}).values()):
            try:
                await callback(uri)
            except Exception:
                log.exception("resource_update_not_delivered", server=server)

    def remove(self, server: str, uri: str, owner: Any) -> None:
        """Stop delivering `uri`'s updates to `owner` (here)."""
        held = self.callbacks.get((server, uri))
        if held is None or held.pop(owner, None) is None:
            return
        if not held:
            del self.callbacks[(server, uri)]
        self._refresh(server)

    async def _sweep(self) -> None:
        """Drop the subscriptions of sessions that expired (their clients cannot come back)."""
        while True:
            await asyncio.sleep(SWEEP_S)
            self.drop_expired(time.time())

    def drop_expired(self, now: float) -> None:
        """Forget every subscription whose owner expired by `now`."""
        for owner in [owner for owner, at in self.expiry.items() if at <= now]:
            self.drop_owner(owner)

    def drop_owner(self, owner: Any) -> None:
        """Forget every subscription of one owner (an ended session)."""
        self.expiry.pop(owner, None)
        for server, uri in [key for key, held in self.callbacks.items() if owner in held]:
            self.remove(server, uri, owner)

    def drop_session(self, session_id: str) -> None:
        """Forget every subscription of a legacy session, on every view."""
        self.drop_owner(session_id)
        self.drop_owner(session_id + SERVER_VIEW)

    async def drop_session_everywhere(self, session_id: str) -> None:
        """`drop_session` on every replica (an SSE transport stream closed: its session is over)."""
        self.drop_session(session_id)
        if self.bus is not None:
            body = orjson.dumps({"owner": session_id})
            await self.bus.send(subjects.GATEWAY_RESOURCE_UNSUBSCRIBE, body)

    async def remove_everywhere(self, server: str, uri: str, owner: Any) -> None:
        """`remove` on every replica."""
        self.remove(server, uri, owner)
        if self.bus is not None:
            body = orjson.dumps({"server": server, "uri": uri, "owner": owner})
            await self.bus.send(subjects.GATEWAY_RESOURCE_UNSUBSCRIBE, body)

    def _refresh(self, server: str) -> None:
        """Reopen the server's upstream stream when its URI set changed."""
        follower = self.followers.get(server)
        if follower is not None:  # a session-based upstream: subscribe and unsubscribe there
            follower.changed.set()
            return
        uris = self.uris(server)
        held = self.streams.get(server)
        if held is not None and held[0] == uris and not held[1].done():
            return
        if held is not None:
            held[1].cancel()
            del self.streams[server]
        if uris:
            self.ready[server] = asyncio.Event()
            task = asyncio.get_running_loop().create_task(self._follow(server, uris))
            self.streams[server] = (uris, task)

    async def _follow(self, server: str, uris: frozenset[str]) -> None:
        """Keep one upstream listen stream open; deliver its updates."""
        while True:
            entry = self.entry(server)
            upstream = self.pool.upstream(entry) if entry is not None else None
            if not isinstance(upstream, HttpUpstream):
                return
            try:
                if not upstream.connected:
                    await upstream.connect()
                await self._listen(upstream, uris)
            except (TransportFailure, OSError, TimeoutError) as exc:
                log.info("resource_watch_reconnecting", server=server, error=str(exc))
            except Exception as exc:  # aiohttp errors and garbage: reconnect
                log.info("resource_watch_reconnecting", server=server, error=repr(exc))
            await asyncio.sleep(RETRY_S)  # backoff before reopening, not for correctness

    async def _listen(self, upstream: HttpUpstream, uris: frozenset[str]) -> None:
        """One upstream `subscriptions/listen` stream until it ends."""
        wanted = {"resourceSubscriptions": sorted(uris)}
        try:
            async with contextlib.aclosing(listen_messages(upstream, wanted, "sb-watch")) as msgs:
                async for msg in msgs:
                    if msg.get("method") == "notifications/subscriptions/acknowledged":
                        self.ready[upstream.server.name].set()
                    if msg.get("method") != "notifications/resources/updated":
                        continue
                    uri = (msg.get("params") or {}).get("uri")
                    if isinstance(uri, str):
                        await self.deliver(upstream.server.name, uri)
        except ListenRefused as exc:
            raise TransportFailure(str(exc)) from None
