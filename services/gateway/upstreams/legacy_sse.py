"""Upstreams on the deprecated HTTP+SSE transport (`transport: sse`, protocol 2024-11-05).

One long-lived `GET` stream per upstream per replica carries every response; requests are POSTed
to the URL the stream's first `endpoint` event names. Responses are matched to requests by
JSON-RPC id (the gateway numbers its own requests), progress notifications by a progress token
the gateway rewrites to a unique one per request and maps back. The session is initialised once
and reused by every call; when the stream ends, pending calls fail and the next call reconnects.
A request cancelled by the client or by the timeout sends `notifications/cancelled` upstream.
Server-to-client requests on the stream: `ping` is answered; the others go to the call when
exactly one call is in flight on the session (the transport does not say which call asked: the
SDK's server keeps the asking call's id in its own metadata, never on the wire), and are refused
with -32601 otherwise. A legacy client's call relays the request to its client; a 2026-07-28
client's call is parked (`parking.py`): its waiter gets `InputNeeded`, while the call stays in
flight here (its response still awaited, it still counts as the one call) until the retry
`resume`s it or `abandon` drops it. A request arriving while the only call in flight is parked
is held for that call and parks it again when it resumes. Notifications that belong to no call
(such as `notifications/resources/updated`) go to `on_notification` when it is set.

Written on aiohttp and the project's SSE parser rather than the SDK's `sse_client`, which was
measured at 0.4-0.76x the calls/s and 2.5-3.5x the CPU per call, and lacks an event size limit
and POST failure handling (docs/PERFORMANCE.md, "Legacy HTTP+SSE upstreams").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
import orjson
import structlog
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from libs.common import sse, tracing
from libs.common.outbound import read_capped
from libs.common.ssrf import url_port
from services.gateway import client_meta, metrics
from services.gateway.jsonrpc import well_formed
from services.gateway.routing_table import ServerEntry
from services.gateway.upstreams.transport import (
    CLIENT_INFO,
    SMALL_BODY,
    InputNeeded,
    Notify,
    TransportFailure,
    json_messages,
    sse_events,
)

log = structlog.get_logger()

SSE_PROTOCOL = "2024-11-05"
ENDPOINT_TIMEOUT_S = 10.0


def same_origin(url: str, other: str) -> bool:
    """Whether two URLs share scheme, host and port (default ports filled in)."""
    a, b = urlsplit(url), urlsplit(other)
    try:
        return (
            a.scheme == b.scheme
            and (a.hostname or "") == (b.hostname or "")
            and url_port(url) == url_port(other)
        )
    except ValueError:
        return False


class SseUpstream:
    """An HTTP+SSE upstream: one stream, one initialised session, reused by every call."""

    modern = False

    def __init__(
        self, server: ServerEntry, http: aiohttp.ClientSession, max_event_bytes: int
    ) -> None:
        self.server = server
        self.http = http
        self.max_event_bytes = max_event_bytes
        self.connected = False
        self.protocol: str | None = None
        self.post_url: str | None = None
        self.capabilities: dict[str, Any] = {}  # the upstream's, from initialize
        self.on_notification: Notify | None = None  # notifications that belong to no call
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._progress: dict[str, tuple[Any, Notify]] = {}
        self._relays: dict[int, Notify] = {}
        self._held: dict[int, list[dict[str, Any]]] = {}  # parked calls: requests held for them
        self._reader: asyncio.Task[None] | None = None
        self._resp: aiohttp.ClientResponse | None = None
        self._opened: float | None = None  # the open session's start (monotonic), if counted

    async def connect(self) -> None:
        """Open the stream, learn the POST URL, initialise the session."""
        async with self._lock:
            if self.connected:
                return
            await self._teardown()
            headers = {**self.server.headers, "Accept": "text/event-stream"}
            try:
                resp = await self.http.get(self.server.url or "", headers=headers)
            except aiohttp.ClientError as exc:
                raise TransportFailure(f"{type(exc).__name__}: {exc}") from None
            ctype = resp.headers.get("content-type", "")
            if resp.status != 200 or not ctype.startswith("text/event-stream"):
                resp.release()
                raise TransportFailure(f"SSE stream: HTTP {resp.status} with {ctype!r}")
            self._resp = resp
            events = sse_events(resp, self.max_event_bytes)
            try:
                async with asyncio.timeout(ENDPOINT_TIMEOUT_S):
                    kind, data = await anext(events)
            except (StopAsyncIteration, TimeoutError, aiohttp.ClientError, sse.EventTooLarge):
                await self._teardown()
                raise TransportFailure("the SSE upstream sent no endpoint event") from None
            if kind != "endpoint":
                await self._teardown()
                raise TransportFailure(f"the SSE upstream's first event is {kind!r}")
            post_url = urljoin(self.server.url or "", data.decode(errors="replace").strip())
            if not same_origin(post_url, self.server.url or ""):
                # the server's secret headers go with every POST: only to the stream's origin
                await self._teardown()
                log.warning("sse_upstream_endpoint_refused", server=self.server.name)
                raise TransportFailure("the SSE upstream's endpoint is on another origin")
            self.post_url = post_url
            self._reader = asyncio.get_running_loop().create_task(self._read(events))
            await self.initialize()

    async def initialize(self) -> None:
        """The session's handshake over an open stream: initialize, then initialized."""
        params = {
            "protocolVersion": HANDSHAKE_PROTOCOL_VERSIONS[-1],
            "capabilities": {},
            "clientInfo": CLIENT_INFO,
        }
        with metrics.UpstreamOperation(self.server.name, "initialize", SSE_PROTOCOL) as op:
            reply = op.reply(await self._call("initialize", params, None))
        if "error" in reply:
            await self._teardown()
            raise TransportFailure(f"initialize failed: {reply['error'].get('message')}")
        result = reply.get("result") or {}
        self.protocol = result.get("protocolVersion") or SSE_PROTOCOL
        self.capabilities = result.get("capabilities") or {}
        await self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.connected = True
        self._opened = metrics.upstream_session_opened(self.server.name)

    async def request(
        self, method: str, params: dict[str, Any] | None, on_notify: Notify | None = None
    ) -> dict[str, Any]:
        """One request over the pooled session."""
        if not self.connected:
            await self.connect()
        return await self._call(method, client_meta.without_envelope(params), on_notify)

    async def _call(
        self, method: str, params: dict[str, Any] | None, on_notify: Notify | None
    ) -> dict[str, Any]:
        """POST a request and wait for its response on the stream."""
        rid = next(self._ids)
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        token_key: str | None = None
        if params is not None:
            meta = params.get("_meta")
            if isinstance(meta, dict) and "progressToken" in meta and on_notify is not None:
                token_key = f"sb-{rid}"
                self._progress[token_key] = (meta["progressToken"], on_notify)
                params = {**params, "_meta": {**meta, "progressToken": token_key}}
            body["params"] = params
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        if on_notify is not None:
            self._relays[rid] = on_notify
        parked = False
        try:
            await self._send(body)
            return await future
        except InputNeeded as need:  # a 2026-07-28 client's call waits for its retry (parking)
            need.upstream, need.rid, parked = self, rid, True  # type: ignore[assignment]
            raise
        except asyncio.CancelledError:
            self._held.pop(rid, None)  # parked by the reader just as the caller went away
            if self.connected:
                cancel = {"requestId": rid, "reason": "cancelled by the gateway's client"}
                note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel}
                task = asyncio.get_running_loop().create_task(self._send_quietly(note))
                task.add_done_callback(lambda _: None)
            raise
        finally:
            if not parked:
                self._pending.pop(rid, None)
                self._relays.pop(rid, None)
            if token_key is not None:  # a parked call's progress has no client any more
                self._progress.pop(token_key, None)

    async def _send(self, message: dict[str, Any]) -> None:
        """POST one message to the session's endpoint (202 expected)."""
        if self.post_url is None:
            raise TransportFailure("the SSE session is not open")
        headers = {**self.server.headers, "Content-Type": "application/json"}
        if tracing.enabled:
            tracing.inject(headers)
        try:
            async with self.http.post(
                self.post_url, data=orjson.dumps(message), headers=headers
            ) as resp:
                await read_capped(resp, SMALL_BODY)
                if resp.status == 404:
                    self.connected = False
                    raise TransportFailure("the SSE upstream no longer knows the session")
                if resp.status >= 300:
                    raise TransportFailure(f"POST to the SSE upstream: HTTP {resp.status}")
        except aiohttp.ClientError as exc:
            self.connected = False
            raise TransportFailure(f"{type(exc).__name__}: {exc}") from None

    async def respond(self, message: dict[str, Any]) -> None:
        """Send our answer to a server-to-client request."""
        await self._send_quietly(message)

    async def _send_quietly(self, message: dict[str, Any]) -> None:
        """Send a notification whose failure does not matter."""
        with contextlib.suppress(TransportFailure, asyncio.CancelledError):
            await self._send(message)

    async def _read(self, events: AsyncIterator[tuple[str, bytes]]) -> None:
        """Dispatch the stream: responses to waiting calls, progress to their relays."""
        try:
            garbage = "sse_upstream_garbage"
            async for msg in json_messages(events, self.server.name, garbage, only="message"):
                await self._dispatch(msg)
        except (TimeoutError, aiohttp.ClientError, sse.EventTooLarge) as exc:
            log.info("sse_upstream_stream_ended", server=self.server.name, error=str(exc))
        finally:
            self._fail_pending("the SSE upstream closed its stream", metrics.SESSION_LOST)

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        """Route one message from the upstream."""
        if "method" not in msg:
            future = self._pending.get(msg.get("id"))  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(well_formed(msg))
            return
        if "id" in msg:  # a server-to-client request
            if msg["method"] != "ping" and len(self._relays) == 1:
                # the stream does not say which call asked: only unambiguous with one call
                rid, relay = next(iter(self._relays.items()))
                if rid in self._held:  # that call is parked: the request waits for its retry
                    self._held[rid].append(msg)
                    return
                future = self._pending.get(rid)
                if future is not None and not future.done():  # (answered: no longer in flight)
                    try:
                        await relay(msg)
                    except InputNeeded as need:  # a 2026-07-28 client's call: park it
                        self._park(rid, future, need)
                    return
            if msg["method"] == "ping":
                reply: dict[str, Any] = {"jsonrpc": "2.0", "id": msg["id"], "result": {}}
            else:
                reply = {
                    "jsonrpc": "2.0",
                    "id": msg["id"],
                    "error": {"code": -32601, "message": f"{msg['method']} is not relayed."},
                }
            await self._send_quietly(reply)
            return
        params = msg.get("params") or {}
        token = params.get("progressToken") if isinstance(params, dict) else None
        held = self._progress.get(token) if isinstance(token, str) else None
        if held is not None:
            original, notify = held
            await notify({**msg, "params": {**params, "progressToken": original}})
        elif self.on_notification is not None:  # e.g. notifications/resources/updated
            await self.on_notification(msg)

    async def closed(self) -> None:
        """Until the current stream ends (at once when none is open)."""
        if self._reader is not None and not self._reader.done():
            await asyncio.wait({self._reader})

    def _park(self, rid: int, waiter: asyncio.Future[dict[str, Any]], need: InputNeeded) -> None:
        """Hand `need` to the call's waiter; the call stays in flight, its response awaited."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)  # nobody may await it (the retry may never come)
        self._pending[rid] = future
        self._held[rid] = []
        waiter.set_exception(need)

    async def resume(self, resp: None, rid: int, on_notify: Notify) -> dict[str, Any]:
        """Wait on for a parked call's response (a further request parks it again)."""
        held = self._held.pop(rid, None)
        if held is None:
            raise TransportFailure("the parked call is gone")
        future = self._pending[rid]
        if rid not in self._relays:  # the stream ended while it was parked (_fail_pending)
            self._pending.pop(rid, None)
            raise TransportFailure("the SSE upstream closed its stream")
        self._relays[rid] = on_notify
        parked = False
        try:
            while held:  # requests that came while it was parked, in order
                await on_notify(held.pop(0))
            return await future
        except InputNeeded as need:
            if rid not in self._held:  # raised by a held request, not by the reader
                self._held[rid] = held
            need.upstream, need.rid, parked = self, rid, True  # type: ignore[assignment]
            raise
        except asyncio.CancelledError:  # the retry's timeout, or its client went away
            self._held.pop(rid, None)
            self._cancel_upstream(rid, "cancelled by the gateway's client")
            raise
        finally:
            if not parked:
                self._pending.pop(rid, None)
                self._relays.pop(rid, None)

    async def abandon(self, resp: None, rid: int) -> None:
        """Drop a parked call: forget it and tell the upstream it is cancelled."""
        if self._held.pop(rid, None) is None:
            return  # not parked any more: its resume already cancelled it upstream
        self._pending.pop(rid, None)
        self._relays.pop(rid, None)
        self._cancel_upstream(rid, "the client did not retry in time")

    def _cancel_upstream(self, rid: int, reason: str) -> None:
        """Send `notifications/cancelled` for one call, in the background."""
        if self.connected:
            cancel = {"requestId": rid, "reason": reason}
            note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": cancel}
            task = asyncio.get_running_loop().create_task(self._send_quietly(note))
            task.add_done_callback(lambda _: None)

    def _fail_pending(self, reason: str, error: str = "") -> None:
        """The stream is gone: every waiting call fails, the next one reconnects.

        The session ends in the metrics once, even when a failed POST already marked it
        disconnected (`error`: why, when the gateway did not close it)."""
        opened, self._opened = self._opened, None
        if opened is not None:
            metrics.upstream_session_ended(self.server.name, opened, self.protocol, error)
        self.connected = False
        for rid in self._held:  # parked calls fail on their retry; they no longer count
            self._relays.pop(rid, None)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(TransportFailure(reason))

    async def _teardown(self) -> None:
        """Stop the reader and close the stream."""
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        resp, self._resp = self._resp, None
        if resp is not None:
            resp.close()
        self.post_url = None

    async def close(self) -> None:
        """Close the stream (the upstream ends the session with it)."""
        self._fail_pending("the gateway closed the session")
        await self._teardown()


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a parked call's outcome as seen (its retry may never come to read it)."""
    if not future.cancelled():
        future.exception()
