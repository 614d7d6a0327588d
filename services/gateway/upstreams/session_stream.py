"""The standalone `GET` stream of a session-based upstream, shared by everything that reads it.

A 2025-era Streamable HTTP server allows one standalone SSE stream per session (the SDK answers
a second `GET` with 409), but two parts of the gateway want it: resource updates
(`session_watch.py`) and 2025-11-25 task status (`task_watch.py`). So one `SessionStream` per
upstream per replica opens the stream on the first `attach`, hands every notification on it to
each attached listener, and closes it when the last one detaches. Requests the upstream sends
on it name no client: `ping` is answered, anything else gets -32601, once, here.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import structlog

from libs.common import sse
from services.gateway.jsonrpc import METHOD_NOT_FOUND
from services.gateway.upstreams.streamable_http import HttpUpstream
from services.gateway.upstreams.transport import TransportFailure, json_messages, sse_events

log = structlog.get_logger()

Listener = Callable[[dict[str, Any]], Awaitable[None]]


class NoSessionStream(Exception):  # noqa: N818 - the upstream's answer, not a failure here
    """The upstream refused the `GET`: `status` 405 (it offers none) or 404 (session expired)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"GET for the session stream: HTTP {status}")
        self.status = status


class SessionStream:
    """One upstream session's standalone stream on this replica and its listeners."""

    def __init__(self, upstream: HttpUpstream) -> None:
        self.upstream = upstream
        self.listeners: dict[int, Listener] = {}
        self.session: str | None = None
        self.reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    async def attach(self, listener: Listener) -> tuple[int, str | None, asyncio.Future[None]]:
        """Listen on the stream of the upstream's current session, opened when needed.

        Returns a token for `detach`, the session id, and a future done when the stream ends.
        Raises NoSessionStream on 404 / 405, TransportFailure on anything else but a stream."""
        async with self._lock:
            session = self.upstream.session_id
            if self.reader is None or self.reader.done() or self.session != session:
                self._close()
                self.reader = await self._open()
                self.session = session
            token = next(self._ids)
            self.listeners[token] = listener
            return token, self.session, self.reader

    def detach(self, token: int) -> None:
        """Stop listening; the last listener closes the stream."""
        self.listeners.pop(token, None)
        if not self.listeners:
            self._close()

    def _close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        self.reader = None

    async def _open(self) -> asyncio.Task[None]:
        upstream = self.upstream
        headers = upstream.headers(None, None)  # the session's own headers
        headers["Accept"] = "text/event-stream"
        headers.pop("Content-Type", None)
        resp = await upstream.http.get(upstream.server.url or "", headers=headers)
        ctype = resp.headers.get("content-type", "")
        if resp.status == 200 and ctype.startswith("text/event-stream"):
            reader = asyncio.get_running_loop().create_task(self._read(resp))
            reader.add_done_callback(lambda t: t.cancelled() or t.exception())
            return reader
        resp.release()
        if resp.status in (404, 405):
            raise NoSessionStream(resp.status)
        raise TransportFailure(f"GET for the session stream: HTTP {resp.status} with {ctype!r}")

    async def _read(self, resp: aiohttp.ClientResponse) -> None:
        """Dispatch the stream until it ends."""
        name = self.upstream.server.name
        try:
            events = sse_events(resp, self.upstream.posts.max_body_bytes)
            async for msg in json_messages(events, name, "session_stream_garbage"):
                if not isinstance(msg.get("method"), str):
                    continue
                if "id" in msg:
                    await self._refuse(msg)
                    continue
                for listener in list(self.listeners.values()):
                    try:
                        await listener(msg)
                    except Exception:  # one listener's fault never stops the others
                        log.exception("session_stream_listener_failed", server=name)
        except (aiohttp.ClientError, TimeoutError, OSError, sse.EventTooLarge) as exc:
            log.info("session_stream_ended", server=name, error=str(exc))
        finally:
            resp.close()

    async def _refuse(self, msg: dict[str, Any]) -> None:
        """A request on the standalone stream names no call: answer `ping`, refuse the rest."""
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": msg["id"], "result": {}}
        if msg["method"] != "ping":
            del reply["result"]
            message = f"{msg['method']} is not relayed."
            reply["error"] = {"code": METHOD_NOT_FOUND, "message": message}
        await self.upstream.respond(reply)


_streams: weakref.WeakKeyDictionary[HttpUpstream, SessionStream] = weakref.WeakKeyDictionary()


def stream_of(upstream: HttpUpstream) -> SessionStream:
    """The shared stream of `upstream` (one per upstream object, that is per replica)."""
    held = _streams.get(upstream)
    if held is None:
        held = _streams[upstream] = SessionStream(upstream)
    return held
