"""Messages between replicas: HTTP+SSE session streams and cancellation, over core NATS.

The deprecated HTTP+SSE transport opens one `GET /sse` stream per session and sends each request
as a separate `POST /messages?session_id=...`; behind round-robin nginx that POST usually lands on
another replica than the stream. The replica that receives a POST answers 202, runs the request,
and publishes every message for the client (progress, the response) on
`live.gateway.sse.<key>` (key: a hash of the signed session id); the replica holding the stream
subscribed to that subject when the stream opened and writes what arrives. A message for a stream
on the same replica skips NATS. Nothing is stored: a message for a stream that has closed is
dropped, as it would be on a single server.

`notifications/cancelled` from any generation and any replica is published on
`live.gateway.cancel` (session id, request id); every replica cancels the matching in-flight
call, which closes (or, for session-based upstreams, cancels) the upstream request.

Server-to-client requests for legacy clients (`ask`) go out over the session's stream the same
way (`GET /mcp` streams open one too); the client POSTs its answer to any replica, which resolves
the waiting request locally or publishes it on `live.gateway.reply` for the replica that asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from typing import Any

import orjson
import structlog

from libs.common import subjects
from libs.common.bus import Bus

log = structlog.get_logger()

STREAM_BUFFER = 1000

Inflight = dict[tuple[Any, Any], asyncio.Future[Any]]


def stream_key(session_id: str) -> str:
    """A NATS-token-safe key of a session id."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


class Relay:
    """Delivers client-bound messages to SSE session streams on any replica; relays cancels."""

    def __init__(self, bus: Bus | None, inflight: Inflight) -> None:
        self.bus = bus
        self.inflight = inflight
        self.streams: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._subs: dict[str, Any] = {}
        self._cancel_sub: Any = None
        self._reply_sub: Any = None
        self.asks: dict[tuple[str, Any], asyncio.Future[dict[str, Any]]] = {}

    async def start(self) -> None:
        """Follow cancellations from every replica."""
        if self.bus is None:
            return

        async def on_cancel(msg: Any) -> None:
            try:
                doc = orjson.loads(msg.data)
                self.cancel_local(doc.get("session"), doc.get("request"))
            except (orjson.JSONDecodeError, AttributeError):
                log.warning("bad_cancel_message")

        async def on_reply(msg: Any) -> None:
            try:
                doc = orjson.loads(msg.data)
                self._answer_local(doc["session"], doc["message"])
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                log.warning("bad_reply_message")

        self._cancel_sub = await self.bus.listen(subjects.GATEWAY_CANCEL, on_cancel, owned=False)
        self._reply_sub = await self.bus.listen(subjects.GATEWAY_REPLY, on_reply, owned=False)

    async def stop(self) -> None:
        """Stop following."""
        for sub in [self._cancel_sub, self._reply_sub, *self._subs.values()]:
            if sub is not None:
                try:
                    await sub.unsubscribe()
                except Exception:  # the connection may already be closed
                    pass
        self._subs.clear()

    # ---- SSE session streams ---------------------------------------------------------------

    async def open_stream(
        self, session_id: str, queue: asyncio.Queue[dict[str, Any]] | None = None
    ) -> asyncio.Queue[dict[str, Any]]:
        """A queue (new, or the one given) receiving every message sent to `session_id`.

        A session reopening its stream (a reconnect) takes over: the newest stream receives.
        """
        key = stream_key(session_id)
        queue = queue if queue is not None else asyncio.Queue(maxsize=STREAM_BUFFER)
        await self.close_stream(session_id)
        self.streams[key] = queue
        if self.bus is not None:

            async def on_msg(msg: Any) -> None:
                self._put(queue, orjson.loads(msg.data))

            subject = f"{subjects.GATEWAY_SSE}.{key}"
            self._subs[key] = await self.bus.listen(subject, on_msg, owned=False)
        return queue

    async def close_stream(
        self, session_id: str, queue: asyncio.Queue[dict[str, Any]] | None = None
    ) -> None:
        """Stop delivering to the session's stream (only to `queue`'s, when given)."""
        key = stream_key(session_id)
        if queue is not None and self.streams.get(key) is not queue:
            return  # a newer stream of the session took over; leave it
        self.streams.pop(key, None)
        sub = self._subs.pop(key, None)
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:  # the connection may already be closed
                pass

    async def send(self, session_id: str, message: dict[str, Any]) -> None:
        """Deliver one message to the session's stream, wherever it is."""
        key = stream_key(session_id)
        local = self.streams.get(key)
        if local is not None:
            self._put(local, message)
        elif self.bus is not None:
            await self.bus.send(f"{subjects.GATEWAY_SSE}.{key}", orjson.dumps(message))

    @staticmethod
    def _put(queue: asyncio.Queue[dict[str, Any]], message: dict[str, Any]) -> None:
        """Queue without blocking; a stream that stopped reading loses messages."""
        if not queue.full():
            queue.put_nowait(message)

    # ---- cancellation ----------------------------------------------------------------------

    async def cancel(self, session_id: str | None, request_id: Any) -> None:
        """Cancel an in-flight call here and on every other replica."""
        self.cancel_local(session_id, request_id)
        if self.bus is not None:
            body = orjson.dumps({"session": session_id, "request": request_id})
            await self.bus.send(subjects.GATEWAY_CANCEL, body)

    def cancel_local(self, session_id: str | None, request_id: Any) -> None:
        """Cancel the matching in-flight call when this replica runs it."""
        task = self.inflight.get((session_id, request_id))
        if task is not None and not task.done():
            task.cancel()

    # ---- server-to-client requests and the client's answers ---------------------------------

    async def ask(
        self, session_id: str, method: str, params: dict[str, Any] | None, timeout_s: float
    ) -> dict[str, Any]:
        """Send a request to a legacy client's stream and wait for its answer (any replica)."""
        rid = f"sb-{uuid.uuid4().hex}"
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            message["params"] = params
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.asks[(session_id, rid)] = future
        try:
            await self.send(session_id, message)
            async with asyncio.timeout(timeout_s):
                return await future
        finally:
            self.asks.pop((session_id, rid), None)

    async def client_reply(self, session_id: str | None, message: dict[str, Any]) -> None:
        """A client's answer to a server-to-client request: to the replica that asked."""
        if not session_id or not self._answer_local(session_id, message):
            if self.bus is not None and session_id:
                body = orjson.dumps({"session": session_id, "message": message})
                await self.bus.send(subjects.GATEWAY_REPLY, body)

    def _answer_local(self, session_id: str, message: dict[str, Any]) -> bool:
        """Resolve the waiting ask on this replica; False when it is not here."""
        future = self.asks.get((session_id, message.get("id")))
        if future is None:
            return False
        if not future.done():
            future.set_result(message)
        return True
