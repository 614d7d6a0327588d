"""Resource subscriptions on session-based upstreams (2025-era Streamable HTTP, HTTP+SSE).

One `SessionFollower` per such upstream per replica, made on the first subscription to it
(`resource_watch.ResourceWatch.add`). It keeps the pooled upstream session subscribed to exactly the
URIs this replica's clients follow there: `resources/subscribe` once per URI when its first follower
comes, `resources/unsubscribe` when its last one goes. Updates arrive on the session's own stream:
on Streamable HTTP the standalone `GET` SSE stream (`Mcp-Session-Id`, open while anything is
followed, closed when nothing is; shared with task status, `session_stream.py`), on HTTP+SSE the
shared stream `SseUpstream` reads anyway (through its `on_notification` hook). Each
`notifications/resources/updated` goes to `ResourceWatch.deliver`. A dropped stream is reopened (at
once after a long-lived stream, else after a short backoff); reopened on another upstream session
(expired → 404 → new `initialize`, or an SSE reconnect) every URI is subscribed again. Nothing here
runs before a client subscribes, and `tools/call` never passes through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import structlog

from services.gateway.jsonrpc import INVALID_PARAMS, RpcFault, relayed
from services.gateway.routing_table import ServerEntry
from services.gateway.upstreams.legacy_sse import SseUpstream
from services.gateway.upstreams.pool import UpstreamPool
from services.gateway.upstreams.session_stream import NoSessionStream, stream_of
from services.gateway.upstreams.streamable_http import HttpUpstream
from services.gateway.upstreams.transport import TransportFailure

log = structlog.get_logger()

SUBSCRIBE, UNSUBSCRIBE = "resources/subscribe", "resources/unsubscribe"
UPDATED = "notifications/resources/updated"
RETRY_S = 1.0


class Followed(Protocol):
    """What a follower needs of the resource watch that made it (`resource_watch.py`)."""

    pool: UpstreamPool

    def entry(self, server: str) -> ServerEntry | None:
        """The server's current entry; None when it is gone."""

    def uris(self, server: str) -> frozenset[str]:
        """Every upstream URI followed on `server` here."""

    async def deliver(self, server: str, uri: str) -> None:
        """Hand one update to everyone following it here."""


class NoStream(Exception):  # noqa: N818 - a condition of the upstream, not a failure here
    """The upstream offers no stream for updates: subscriptions to it are refused."""

    def __init__(self, fault: RpcFault) -> None:
        super().__init__(fault.message)
        self.fault = fault


class SessionFollower:
    """One session-based upstream's subscriptions on this replica, and the stream of updates."""

    def __init__(self, watch: Followed, server: str) -> None:
        self.watch = watch
        self.server = server
        self.session: str | None = None  # the upstream session `subscribed` holds on
        self.subscribed: set[str] = set()
        self.live = False  # the stream is open and `subscribed` is what is wanted
        self.refused: dict[str, RpcFault] = {}  # the upstream's own error, per URI
        self.failure: RpcFault | None = None  # the upstream offers no stream for updates
        self.changed = asyncio.Event()
        self.state = asyncio.Condition()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def settled(self, uri: str) -> None:
        """Until `uri` is followed on the open stream; the upstream's refusal is raised."""
        self.refused.pop(uri, None)  # every new subscription gets its own attempt
        self.changed.set()
        async with self.state:
            await self.state.wait_for(
                lambda: (
                    uri in self.refused
                    or self.failure is not None
                    or (self.live and uri in self.subscribed)
                )
            )
        if uri in self.refused:
            raise self.refused[uri]
        if self.failure is not None:
            raise self.failure

    async def stop(self) -> None:
        """Stop following (the stream closes with the task)."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _run(self) -> None:
        """Follow while anything is wanted, idle otherwise."""
        while True:
            self.changed.clear()
            entry = self.watch.entry(self.server)
            if entry is None:  # the server is gone, and its session with it
                self.session, self.subscribed = None, set()
            if entry is None or not self.watch.uris(self.server) - self.refused.keys():
                if not self.watch.uris(self.server):
                    self.refused.clear()
                await self.changed.wait()
                continue
            t0 = time.monotonic()
            try:
                await self._follow(entry)
                continue  # the session changed, or nothing is wanted any more
            except NoStream as exc:  # say so to the waiting clients, then idle
                self.failure = exc.fault
                await self._publish()
                await self.changed.wait()
                self.failure = None
                continue
            except (RpcFault, TransportFailure, OSError, TimeoutError, aiohttp.ClientError) as exc:
                log.info("resource_watch_reconnecting", server=self.server, error=str(exc))
            except Exception as exc:  # garbage from the upstream: reconnect
                log.info("resource_watch_reconnecting", server=self.server, error=repr(exc))
            if time.monotonic() - t0 < RETRY_S:  # a backoff against tight loops only
                await asyncio.sleep(RETRY_S)

    async def _follow(self, entry: ServerEntry) -> None:
        """Open the session's stream, keep the subscriptions in step until it ends."""
        upstream = self.watch.pool.upstream(entry)
        if isinstance(upstream, SseUpstream):
            session, ended, release = await self._open_sse(upstream)
        elif isinstance(upstream, HttpUpstream) and not upstream.modern:
            session, ended, release = await self._open_http(upstream)
        else:  # no longer session-based (upgraded): a new subscription takes the other path
            fault = RpcFault(INVALID_PARAMS, f"{self.server!r} changed; subscribe again.")
            raise NoStream(fault)
        if session != self.session:  # a new upstream session holds no subscription yet
            self.session = session
            self.subscribed.clear()
        try:
            while True:
                self.changed.clear()
                if not await self._sync(entry, upstream, session):
                    return  # the upstream session was replaced: reopen on the new one
                if not self.subscribed:
                    return  # nothing wanted: close the stream
                self.live = True
                await self._publish()
                waiter = asyncio.ensure_future(self.changed.wait())
                await asyncio.wait({ended, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if ended.done():
                    raise TransportFailure("the update stream ended")
        finally:
            self.live = False
            ended.cancel()
            release()

    async def _sync(self, entry: ServerEntry, upstream: Any, session: str | None) -> bool:
        """Subscribe what is wanted and unsubscribe what is not, on `session`.

        False when the upstream's session changed meanwhile (the request went elsewhere)."""
        while True:
            wanted = set(self.watch.uris(self.server))
            self.refused = {uri: f for uri, f in self.refused.items() if uri in wanted}
            wanted -= self.refused.keys()
            todo = [(SUBSCRIBE, uri) for uri in sorted(wanted - self.subscribed)]
            todo += [(UNSUBSCRIBE, uri) for uri in sorted(self.subscribed - wanted)]
            if not todo:
                return True
            for method, uri in todo:
                reply, _ = await self.watch.pool.request(entry, method, {"uri": uri})
                if _session(upstream) != session:
                    return False
                if method == UNSUBSCRIBE:
                    self.subscribed.discard(uri)
                elif "error" in reply:
                    self.refused[uri] = relayed(reply["error"])
                    await self._publish()
                else:
                    self.subscribed.add(uri)

    async def _open_http(
        self, upstream: HttpUpstream
    ) -> tuple[str | None, asyncio.Future[None], Callable[[], None]]:
        """The standalone GET stream of the upstream's session (a new session after a 404).

        It is shared with task status (`session_stream.py`)."""

        async def on_message(msg: dict[str, Any]) -> None:
            await self._on_message(msg)

        shared = stream_of(upstream)
        for attempt in range(2):
            if not upstream.connected:
                await upstream.connect()
            session = upstream.session_id
            try:
                token, session, reader = await shared.attach(on_message)
            except NoSessionStream as exc:
                if exc.status == 404 and session is not None and not attempt:
                    if upstream.session_id == session:  # expired: initialise a new session
                        upstream.connected = False
                    continue
                if exc.status == 405:
                    fault = RpcFault(
                        INVALID_PARAMS,
                        f"{self.server!r} offers no stream for resource updates (GET: HTTP 405).",
                        {"server": self.server},
                    )
                    raise NoStream(fault) from None
                raise TransportFailure(str(exc)) from None
            break
        else:
            raise TransportFailure("the upstream keeps rejecting the session")
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        reader.add_done_callback(lambda _: ended.done() or ended.set_result(None))
        return session, ended, lambda: shared.detach(token)

    async def _open_sse(
        self, upstream: SseUpstream
    ) -> tuple[str | None, asyncio.Future[None], Callable[[], None]]:
        """The HTTP+SSE upstream's shared stream: connected, updates routed here."""

        async def on_notification(msg: dict[str, Any]) -> None:
            await self._on_message(msg)

        upstream.on_notification = on_notification
        if not upstream.connected:
            await upstream.connect()
        return upstream.post_url, asyncio.ensure_future(upstream.closed()), lambda: None

    async def _on_message(self, msg: dict[str, Any]) -> None:
        """An update goes to its followers."""
        if msg.get("method") == UPDATED:
            uri = (msg.get("params") or {}).get("uri")
            if isinstance(uri, str):
                await self.watch.deliver(self.server, uri)

    async def _publish(self) -> None:
        """Wake the clients waiting in `settled`."""
        async with self.state:
            self.state.notify_all()


def _session(upstream: HttpUpstream | SseUpstream) -> str | None:
    """What names the upstream session now (an SSE session is its POST URL)."""
    return upstream.post_url if isinstance(upstream, SseUpstream) else upstream.session_id
