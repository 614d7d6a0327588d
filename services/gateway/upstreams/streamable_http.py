"""Streamable HTTP upstreams: one session each, the newest revision it speaks, reused.

One class, kept whole although it passes 300 lines: connecting (discover or initialize), a
request and its JSON or SSE answer, resuming an answer's stream, and parking a call are the one
session's protocol, and each step reads and writes the same session state.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from typing import Any

import aiohttp
import orjson
import structlog
from mcp.shared.inbound import encode_header_value
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    PROTOCOL_VERSION_META_KEY,
)
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_MODERN_VERSION

from libs.common import sse, tracing
from libs.common.outbound import read_capped
from services.gateway import client_meta, metrics
from services.gateway.jsonrpc import well_formed
from services.gateway.routing_table import ServerEntry
from services.gateway.upstreams.http_client import HttpFailure, Response, TooLarge, UpstreamHttp
from services.gateway.upstreams.transport import (
    CLIENT_INFO,
    SMALL_BODY,
    InputNeeded,
    Notify,
    SessionExpired,
    TransportFailure,
    too_large,
    with_modern_meta,
)

log = structlog.get_logger()

LATEST_LEGACY = HANDSHAKE_PROTOCOL_VERSIONS[-1]
ACCEPT = "application/json, text/event-stream"
RESUME_ATTEMPTS = 5  # resumed streams in a row that may end without an event
RESUME_MAX_WAIT_MS = 5000  # the most of an upstream's `retry` we wait before resuming
# Request ids of an upstream session start at a random point of this range, not at 1: an upstream
# may key what it keeps by request id across sessions (the Python SDK names each request's SSE
# stream by its id, in one event store for every session), so a replay for ids that other
# sessions also use (another replica's session, SDK clients counting from 0 or 1) would carry
# their events, answers included. Numbers stay below 2**53, exact in JavaScript.
FIRST_ID = (1 << 32, 1 << 52)
NAME_PARAM = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
NAME_PARAM.update(dict.fromkeys(("tasks/get", "tasks/update", "tasks/cancel"), "taskId"))


class HttpUpstream:
    """A Streamable HTTP upstream: the newest revision it speaks, one session, reused.

    Requests go through the lean `posts` client; aiohttp (`http`) carries the rest: session
    streams, listen requests, notifications, answers and DELETE."""

    def __init__(
        self, server: ServerEntry, http: aiohttp.ClientSession, posts: UpstreamHttp
    ) -> None:
        self.server = server
        self.http = http
        self.posts = posts
        self.modern = False
        self.protocol: str | None = None
        self.session_id: str | None = None
        self.capabilities: dict[str, Any] = {}  # the upstream's, from discover or initialize
        self.connected = False
        self._counted = False  # this session is in the open upstream sessions gauge
        self._opened = 0.0  # when it opened (monotonic): mcp.client.session.duration
        self._lock = asyncio.Lock()
        self._ids = itertools.count(FIRST_ID[0] + secrets.randbelow(FIRST_ID[1] - FIRST_ID[0]))

    def headers(self, method: str | None, params: dict[str, Any] | None) -> dict[str, str]:
        """Transport headers: the server's own (secrets), protocol and routing headers."""
        headers = {**self.server.headers, "Accept": ACCEPT, "Content-Type": "application/json"}
        if self.protocol:
            headers["MCP-Protocol-Version"] = self.protocol
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
        if self.modern and method:
            headers["Mcp-Method"] = method
            key = NAME_PARAM.get(method)
            value = params.get(key) if key and params else None
            if isinstance(value, str):  # base64 (=?base64?...?=) unless plain printable ASCII
                headers["Mcp-Name"] = encode_header_value(value)
        if tracing.enabled:  # the current span (the gateway's upstream call) as the parent
            tracing.inject(headers)
        return headers

    async def connect(self) -> None:
        """Discover (2026-07-28) or initialise (earlier revisions); once per session."""
        async with self._lock:
            if self.connected:
                return
            self._uncount(metrics.SESSION_LOST)  # an expired session is being replaced
            self.session_id, self.protocol, self.modern = None, None, False
            meta = {
                PROTOCOL_VERSION_META_KEY: LATEST_MODERN_VERSION,
                CLIENT_INFO_META_KEY: CLIENT_INFO,
                CLIENT_CAPABILITIES_META_KEY: {},
            }
            self.protocol, self.modern = LATEST_MODERN_VERSION, True
            try:
                with metrics.UpstreamOperation(
                    self.server.name, "server/discover", LATEST_MODERN_VERSION
                ) as op:
                    reply = op.reply(await self._post("server/discover", {"_meta": meta}, None))
                versions = (reply.get("result") or {}).get("supportedVersions") or []
            except (TransportFailure, SessionExpired):
                versions = []
            if LATEST_MODERN_VERSION in versions:
                self.capabilities = (reply.get("result") or {}).get("capabilities") or {}
                self.connected = True
                return
            self.protocol, self.modern = None, False
            params = {
                "protocolVersion": LATEST_LEGACY,
                "capabilities": {},
                "clientInfo": CLIENT_INFO,
            }
            with metrics.UpstreamOperation(self.server.name, "initialize", LATEST_LEGACY) as op:
                reply = op.reply(await self._post("initialize", params, None, keep_session=True))
            if "error" in reply:
                raise TransportFailure(f"initialize failed: {reply['error'].get('message')}")
            result = reply.get("result") or {}
            self.protocol = result.get("protocolVersion") or LATEST_LEGACY
            self.capabilities = result.get("capabilities") or {}
            await self._notify("notifications/initialized")
            self.connected = True
            self._counted = True
            self._opened = metrics.upstream_session_opened(self.server.name)

    def _uncount(self, error: str = "") -> None:
        """Take this upstream's session out of the open-sessions gauge (once); time it.

        `error`: why it ended, when not closed by the gateway (error.type)."""
        if self._counted:
            self._counted = False
            metrics.upstream_session_ended(self.server.name, self._opened, self.protocol, error)

    async def request(
        self,
        method: str,
        params: dict[str, Any] | None,
        on_notify: Notify | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send one request over the pooled session; re-initialise once when it expired.

        `headers` (a call's `Mcp-Param-*`) go to 2026-07-28 upstreams only."""
        for attempt in range(2):
            if not self.connected:
                await self.connect()
            if self.modern:
                params = with_modern_meta(params, self.protocol or LATEST_MODERN_VERSION)
            else:
                params = client_meta.without_envelope(params)
            try:
                return await self._post(method, params, on_notify, extra=headers)
            except SessionExpired:
                self.connected = False
                if attempt:
                    raise TransportFailure("the upstream keeps rejecting the session") from None
        raise AssertionError("unreachable")

    async def resume(self, resp: Response, rid: int, on_notify: Notify) -> dict[str, Any]:
        """Read on a parked call's SSE response until its answer (it may park again)."""
        parked = False
        try:
            return await self._answer(resp, rid, on_notify)
        except InputNeeded as need:
            need.upstream, need.resp, need.rid, parked = self, resp, rid, True
            raise
        except TooLarge as exc:
            raise too_large(self.server.name, exc.limit) from None
        except HttpFailure as exc:
            raise TransportFailure(str(exc)) from None
        finally:
            if not parked:
                resp.release()

    async def abandon(self, resp: Response, rid: int) -> None:
        """Drop a parked call: close its response and tell the upstream it is cancelled."""
        resp.close()
        note = {"requestId": rid, "reason": "the client did not retry in time"}
        try:
            await self._notify("notifications/cancelled", note)
        except TransportFailure:
            pass

    async def respond(self, message: dict[str, Any]) -> None:
        """Send our answer to a server-to-client request over the session."""
        try:
            async with self.http.post(
                self.server.url, data=orjson.dumps(message), headers=self.headers(None, None)
            ) as resp:
                await read_capped(resp, SMALL_BODY)
        except aiohttp.ClientError as exc:
            log.info("upstream_answer_not_sent", server=self.server.name, error=str(exc))

    async def _notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification (202 expected)."""
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            body["params"] = params
        try:
            async with self.http.post(
                self.server.url, data=orjson.dumps(body), headers=self.headers(method, params)
            ) as resp:
                await read_capped(resp, SMALL_BODY)
        except aiohttp.ClientError as exc:
            raise TransportFailure(str(exc)) from None

    async def _post(
        self,
        method: str,
        params: dict[str, Any] | None,
        on_notify: Notify | None,
        keep_session: bool = False,
        extra: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST one request and read its response (JSON, or SSE relaying notifications)."""
        rid = next(self._ids)
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            body["params"] = params
        headers = self.headers(method, params)
        if extra and self.modern:
            headers.update(extra)
        try:
            resp = await self.posts.post(
                self.server.url or "", orjson.dumps(body), headers, self.posts.max_body_bytes
            )
            parked = False
            try:
                if resp.status == 404 and self.session_id:
                    raise SessionExpired()
                if keep_session and resp.headers.get("mcp-session-id"):
                    self.session_id = resp.headers["mcp-session-id"]
                ctype = resp.headers.get("content-type", "")
                if ctype.startswith("text/event-stream"):
                    try:
                        return await self._answer(resp, rid, on_notify)
                    except InputNeeded as need:  # the call waits for a client's retry
                        need.upstream, need.resp, need.rid, parked = self, resp, rid, True
                        raise
                raw = await resp.read()
                if not ctype.startswith("application/json"):
                    raise TransportFailure(f"HTTP {resp.status} with content type {ctype!r}")
                return _parse_reply(raw, rid)
            finally:
                if not parked:
                    resp.release()
        except TooLarge as exc:
            raise too_large(self.server.name, exc.limit) from None
        except HttpFailure as exc:
            raise TransportFailure(str(exc)) from None
        except asyncio.CancelledError:
            if self.session_id and not keep_session:  # a legacy session: say so, not just close
                note = {"requestId": rid, "reason": "cancelled by the gateway's client"}
                task = asyncio.get_running_loop().create_task(
                    self._notify("notifications/cancelled", note)
                )
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise

    async def _answer(self, resp: Response, rid: int, on_notify: Notify | None) -> dict[str, Any]:
        """Read an SSE response until the answer to `rid`, relaying notifications on the way.

        An upstream may end the stream before it answers once it has primed it with an event id
        (SEP-1699 polling, or a restart): the rest is then read from a GET carrying
        `Last-Event-ID`, after the `retry` delay the upstream asked for.
        """
        while (event := await resp.next_event()) is not None:
            if (reply := await _handle_event(event, rid, on_notify)) is not None:
                return reply
        primary = resp.sse
        if primary is None or primary.last_id is None:
            raise TransportFailure("the upstream closed the stream before answering")
        return await self._resume(primary, rid, on_notify)

    async def _resume(self, primary: sse.Parser, rid: int, on_notify: Notify | None) -> dict:
        """GET the stream again from its last event id until the answer comes."""
        headers = self.headers(None, None)
        headers["Accept"] = "text/event-stream"
        headers.pop("Content-Type", None)
        idle = 0  # streams in a row that brought no event
        while idle < RESUME_ATTEMPTS:
            await asyncio.sleep(min(primary.retry_ms or 0, RESUME_MAX_WAIT_MS) / 1000)
            parser = sse.Parser(primary.max_event_bytes)
            parser.last_id, parser.retry_ms = primary.last_id, primary.retry_ms
            headers["Last-Event-ID"] = primary.last_id or ""
            idle += 1
            try:
                async with self.http.get(self.server.url or "", headers=headers) as resp:
                    ctype = resp.headers.get("content-type", "")
                    if resp.status != 200 or not ctype.startswith("text/event-stream"):
                        raise TransportFailure(
                            f"resuming the stream from event {primary.last_id!r}: "
                            f"HTTP {resp.status} with {ctype!r}"
                        )
                    async for event in sse.events(resp.content.iter_any(), parser):
                        idle = 0
                        primary.last_id, primary.retry_ms = parser.last_id, parser.retry_ms
                        if (reply := await _handle_event(event, rid, on_notify)) is not None:
                            return reply
                    primary.last_id, primary.retry_ms = parser.last_id, parser.retry_ms
            except sse.EventTooLarge:
                raise too_large(self.server.name, primary.max_event_bytes or 0) from None
            except aiohttp.ClientError as exc:
                raise TransportFailure(f"resuming the stream: {exc}") from None
        raise TransportFailure("the upstream's resumed streams ended without an answer")

    async def close(self) -> None:
        """End the upstream session (DELETE) when it had one."""
        if self.session_id and self.server.url:
            try:
                async with self.http.delete(
                    self.server.url, headers=self.headers(None, None), timeout=_SHORT
                ) as resp:
                    await read_capped(resp, SMALL_BODY)
            except (aiohttp.ClientError, TimeoutError):
                pass
        self._uncount()
        self.connected = False


_SHORT = aiohttp.ClientTimeout(total=2)


def _parse_reply(raw: bytes, rid: int) -> dict[str, Any]:
    """Parse a JSON reply; anything that is not the JSON-RPC response to `rid` is a failure."""
    try:
        msg = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise TransportFailure("the upstream answered with something that is not JSON") from None
    if not isinstance(msg, dict) or ("result" not in msg and "error" not in msg):
        raise TransportFailure("the upstream answered with something that is not JSON-RPC")
    return well_formed(msg)


async def _handle_event(
    event: sse.Event, rid: int, on_notify: Notify | None
) -> dict[str, Any] | None:
    """The answer to `rid` when the event carries it; notifications and requests go on."""
    if not event.data:  # a priming event: an id to resume from, no message
        return None
    try:
        msg = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        raise TransportFailure("the upstream sent an SSE event that is not JSON") from None
    if not isinstance(msg, dict):
        return None
    if msg.get("id") == rid and ("result" in msg or "error" in msg):
        return well_formed(msg)
    if "method" in msg and on_notify is not None:  # notifications and server requests
        await on_notify(msg)
    return None
