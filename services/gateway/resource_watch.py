"""Resource subscriptions: upstream `notifications/resources/updated` relayed to clients.

Per replica, one `subscriptions/listen` stream per 2026-07-28 upstream that has subscribed
resources, carrying `resourceSubscriptions` = every upstream URI a client of this replica
subscribed to on that server; when the set changes the stream is reopened with the new set, and
when the stream drops it is reopened after a short backoff. Each update goes to the callbacks
registered for that (server, URI): a legacy session's callback sends
`notifications/resources/updated` (with the `switchboard://` URI) over the session's stream
through the relay, so it works whichever replica took the `resources/subscribe`; a
`subscriptions/listen` stream's callback writes to that stream. `resources/unsubscribe` is
broadcast on `live.gateway.resource.unsubscribe` so the replica holding the subscription drops
it; a DELETEd session (`live.gateway.session.ended`) drops all of its subscriptions.
Session-based (2025-era) upstreams are not followed (their updates arrive on a session stream
the gateway does not open): subscribing to their resources is -32602.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from mcp_types import PROTOCOL_VERSION_META_KEY
from mcp_types.version import LATEST_MODERN_VERSION

from libs.common.bus import Bus
from services.gateway.jsonrpc import INVALID_PARAMS, RpcFault
from services.gateway.routing_table import ServerEntry
from services.gateway.sessions import ENDED_SUBJECT
from services.gateway.sse_upstream import sse_events
from services.gateway.upstream import (
    HttpUpstream,
    TransportFailure,
    UpstreamPool,
    _with_modern_meta,
)

log = structlog.get_logger()

UNSUBSCRIBE_SUBJECT = "live.gateway.resource.unsubscribe"
RETRY_S = 1.0
READY_S = 5.0
Callback = Callable[[str], Awaitable[None]]  # receives the upstream URI that changed


class ResourceWatch:
    """This replica's upstream resource subscriptions and who wants their updates."""

    def __init__(self, pool: UpstreamPool, bus: Bus | None) -> None:
        self.pool = pool
        self.bus = bus
        self.callbacks: dict[tuple[str, str], dict[Any, Callback]] = {}
        self.streams: dict[str, tuple[frozenset[str], asyncio.Task[None]]] = {}
        self.ready: dict[str, asyncio.Event] = {}  # set once the upstream acknowledged the set
        self.entries: dict[str, ServerEntry] = {}
        self._sub: Any = None
        self._ended: Any = None

    async def start(self) -> None:
        """Follow unsubscriptions made on other replicas."""
        if self.bus is None:
            return

        async def on_msg(msg: Any) -> None:
            try:
                doc = orjson.loads(msg.data)
                self.remove(doc["server"], doc["uri"], doc["owner"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.warning("bad_unsubscribe_message")

        async def on_ended(msg: Any) -> None:  # a DELETEd session follows nothing any more
            self.drop_owner(msg.data.decode(errors="replace"))

        self._sub = await self.bus.nc.subscribe(self.bus.subject(UNSUBSCRIBE_SUBJECT), cb=on_msg)
        self._ended = await self.bus.nc.subscribe(self.bus.subject(ENDED_SUBJECT), cb=on_ended)

    async def stop(self) -> None:
        """Close every upstream stream."""
        for _, task in self.streams.values():
            task.cancel()
        self.streams.clear()
        for sub in (self._sub, self._ended):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def add(self, server: ServerEntry, uri: str, owner: Any, callback: Callback) -> None:
        """Deliver updates of `uri` on `server` to `callback` (one per owner)."""
        upstream = self.pool.upstream(server)
        if isinstance(upstream, HttpUpstream) and not upstream.connected:
            try:
                await upstream.connect()
            except TransportFailure as exc:
                raise RpcFault(
                    INVALID_PARAMS, f"Cannot subscribe on {server.name!r}: {exc}"
                ) from None
        if not isinstance(upstream, HttpUpstream) or not upstream.modern:
            raise RpcFault(
                INVALID_PARAMS,
                f"Resource subscriptions on {server.name!r} are not supported (not 2026-07-28).",
                {"server": server.name},
            )
        self.entries[server.name] = server
        self.callbacks.setdefault((server.name, uri), {})[owner] = callback
        self._refresh(server.name)
        try:  # answer once the upstream follows the URI, so no update in between is missed
            async with asyncio.timeout(READY_S):
                await self.ready[server.name].wait()
        except TimeoutError:
            log.warning("resource_watch_not_acknowledged", server=server.name)

    def remove(self, server: str, uri: str, owner: Any) -> None:
        """Stop delivering `uri`'s updates to `owner` (here)."""
        held = self.callbacks.get((server, uri))
        if held is None or held.pop(owner, None) is None:
            return
        if not held:
            del self.callbacks[(server, uri)]
        self._refresh(server)

    def drop_owner(self, owner: Any) -> None:
        """Forget every subscription of one owner (an ended session)."""
        for server, uri in [key for key, held in self.callbacks.items() if owner in held]:
            self.remove(server, uri, owner)

    async def remove_everywhere(self, server: str, uri: str, owner: Any) -> None:
        """`remove` on every replica."""
        self.remove(server, uri, owner)
        if self.bus is not None:
            body = orjson.dumps({"server": server, "uri": uri, "owner": owner})
            await self.bus.nc.publish(self.bus.subject(UNSUBSCRIBE_SUBJECT), body)

    def _refresh(self, server: str) -> None:
        """Reopen the server's upstream stream when its URI set changed."""
        uris = frozenset(uri for (name, uri) in self.callbacks if name == server)
        held = self.streams.get(server)
        if held is not None and held[0] == uris:
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
            entry = self.entries.get(server)
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
        meta = {PROTOCOL_VERSION_META_KEY: upstream.protocol or LATEST_MODERN_VERSION}
        params = {"notifications": {"resourceSubscriptions": sorted(uris)}, "_meta": meta}
        params = _with_modern_meta(params, upstream.protocol or LATEST_MODERN_VERSION)
        body = {"jsonrpc": "2.0", "id": "sb-watch", "method": "subscriptions/listen"}
        body["params"] = params
        headers = upstream._headers("subscriptions/listen", params)  # noqa: SLF001
        async with upstream.http.post(
            upstream.server.url or "", data=orjson.dumps(body), headers=headers
        ) as resp:
            if not resp.headers.get("content-type", "").startswith("text/event-stream"):
                raise TransportFailure(f"listen: HTTP {resp.status}")
            async for _, data in sse_events(resp):
                msg = orjson.loads(data)
                if not isinstance(msg, dict):
                    continue
                if msg.get("method") == "notifications/subscriptions/acknowledged":
                    self.ready[upstream.server.name].set()
                if msg.get("method") != "notifications/resources/updated":
                    continue
                uri = (msg.get("params") or {}).get("uri")
                for callback in list(self.callbacks.get((upstream.server.name, uri), {}).values()):
                    await callback(uri)
