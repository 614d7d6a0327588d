"""The gateway's HTTP/1.1 client for MCP POSTs to upstreams: keep-alive, one write per request.

Every tools/call crosses this client, so it is kept to what that needs: a pooled connection per
host, the request sent in one `write`, the response parsed by httptools (the C parser uvicorn
uses) and handed over as soon as its head is in. The body is read whole (`read`) or event by
event (`next_event`, for SSE responses: libs/common/sse.py parses). aiohttp, which the gateway
keeps for its long-lived GET streams and notifications, spent 100-160 us of a single call's
latency on a 2-core VM; this client spends under 10 (docs/PERFORMANCE.md).

A connection goes back to the pool only after a complete response that allows keep-alive; a
response dropped half-read (cancellation, a parked call abandoned) closes its connection.

A new connection is opened through the outbound guard (`libs/common/outbound.py`): the host is
resolved at most once per TTL, every address checked against the SSRF rules, and the socket
connected to a checked address (TLS still verifies the name); reused connections cost nothing.
A body is refused (`TooLarge`) as soon as more than the response's `limit` arrived, and an SSE
event as soon as it passes it: nothing bigger is ever held in memory.

One module although past 300 lines: the connection (an asyncio protocol around the httptools
parser) feeds its response's private state directly, and split apart that state would be public.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import httptools

from libs.common import sse
from libs.common.outbound import Guard
from libs.common.ssrf import SsrfRefused

IDLE_S = 60.0  # a pooled connection unused this long is closed rather than reused
USER_AGENT = "switchboard-gateway"
_FRAMING = frozenset(("content-length", "transfer-encoding", "connection"))  # ours alone


class HttpFailure(Exception):
    """The upstream could not be reached, or its answer is not HTTP/1.x."""


class TooLarge(HttpFailure):
    """The body (or one SSE event of it) passed the response's limit; the connection is closed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the upstream's answer is larger than {limit} bytes")
        self.limit = limit


class ClosedIdle(HttpFailure):
    """A kept-alive connection was closed by the server before any byte of the answer.

    That is the server's idle timeout crossing our request, which it never read. Safe to send
    again."""


class _Target:
    """Where requests to one URL go, parsed once: pool key, host header, request path."""

    __slots__ = ("host", "host_header", "key", "path", "port", "tls")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HttpFailure(f"not an http(s) URL: {url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        try:
            port = parts.port
        except ValueError:
            raise HttpFailure(f"bad port in {url!r}") from None
        self.port = port or (443 if self.tls else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        self.host_header = host if self.port == default else f"{host}:{self.port}"
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.key = (self.host, self.port, self.tls)


class Response:
    """One response: status and headers at once, the body as it arrives."""

    __slots__ = (
        "_buf",
        "_conn",
        "_done",
        "_error",
        "_events",
        "_waiter",
        "headers",
        "limit",
        "sse",
        "status",
    )

    def __init__(self, conn: _Connection, limit: int) -> None:
        self._conn: _Connection | None = conn
        self.limit = limit  # the most body bytes (or bytes of one SSE event) taken
        self.status = 0
        self.headers: dict[str, str] = {}  # names in lower case
        self._buf = bytearray()
        self._done = False
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.sse: sse.Parser | None = None  # an SSE body's parser: its last event id and retry
        self._events: deque[sse.Event] | None = None  # parsed, not yet taken

    # ---- fed by the connection ----------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _feed(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > self.limit:
            if not self.headers.get("content-type", "").startswith("text/event-stream"):
                self._refuse()
                return
            # an SSE body is judged per event as it is parsed; unparsed bytes wait in the
            # kernel, not here, until the reader has taken these
            conn = self._conn
            if conn is not None and conn.transport is not None and not conn.paused:
                conn.paused = True
                conn.transport.pause_reading()
        self._wake()

    def _refuse(self) -> None:
        """Too much: drop what arrived, close the connection, fail the reader."""
        self._buf.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.finished(self, reusable=False)
        self._finish(TooLarge(self.limit))

    def _finish(self, error: Exception | None = None) -> None:
        if not self._done:
            self._done, self._error = True, error
            self._wake()

    async def _more(self) -> bool:
        """Wait for more body bytes; False at the end of the body."""
        if self._done:
            if self._error is not None:
                raise self._error
            return False
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error
        return True

    # ---- read by the caller -------------------------------------------------------------

    async def read(self) -> bytes:
        """The whole body (TooLarge past the response's limit, whatever its type)."""
        while await self._more():
            if len(self._buf) > self.limit:
                self._refuse()
                raise TooLarge(self.limit)
        body = bytes(self._buf)
        self._buf.clear()
        self.release()
        return body

    async def next_event(self) -> sse.Event | None:
        """The body's next server-sent event; None at its end.

        The parser and what it parsed stay with the response, so a reader that stops (a parked
        call) and a later one (its resumption) see every event once, in order.
        """
        if self.sse is None:
            self.sse, self._events = sse.Parser(self.limit), deque()
        events = self._events
        assert events is not None
        while not events:
            if self._buf:
                chunk = bytes(self._buf)
                self._buf.clear()
                conn = self._conn
                if conn is not None and conn.paused and conn.transport is not None:
                    conn.paused = False
                    conn.transport.resume_reading()
                try:
                    events.extend(self.sse.feed(chunk))
                except sse.EventTooLarge:
                    self._refuse()
                    raise TooLarge(self.limit) from None
            elif not await self._more():
                return None
        return events.popleft()

    def release(self) -> None:
        """Done with this response: its connection goes back to the pool, or is closed."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.finished(self, reusable=self._done and self._error is None)

    def close(self) -> None:
        """Drop the response and close its connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.finished(self, reusable=False)
        self._finish(HttpFailure("the response was closed"))


class _Connection(asyncio.Protocol):
    """One keep-alive connection to an upstream; one request at a time."""

    def __init__(self, pool: UpstreamHttp, key: tuple[str, int, bool]) -> None:
        self.pool, self.key = pool, key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.head: asyncio.Future[Response] | None = None
        self.closed = False
        self.idle_since = 0.0
        self.keep_alive = False  # the last response allows another request on this connection
        self.sent = 0  # requests written on this connection
        self.answered = False  # a byte of the current request's answer came in
        self.paused = False  # reading paused until the response's reader catches up

    # ---- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.answered = True
        if self.response is None:  # bytes nobody asked for: the connection is unusable
            self._shut()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpFailure(f"the upstream's answer is not HTTP: {exc}"))
            self._shut()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        response = self.response
        if response is None:
            return
        if self.head is None and not response._done and self._until_close():
            response._finish()  # a body delimited by the connection's end is complete
            return
        if self.sent > 1 and not self.answered:
            self._fail(ClosedIdle("the upstream closed a kept-alive connection"))
            return
        self._fail(HttpFailure("the upstream closed the connection before the response ended"))

    # ---- httptools callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.response is not None:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            held = self.response.headers.get(key)
            self.response.headers[key] = text if held is None else f"{held}, {text}"

    def on_headers_complete(self) -> None:
        response, head = self.response, self.head
        if response is None or head is None:
            return
        response.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()
        if response.status < 200:  # 1xx: informational, the real head follows
            response.headers.clear()
            return
        self.head = None
        if not head.done():
            head.set_result(response)

    def on_body(self, body: bytes) -> None:
        if self.response is not None:
            self.response._feed(body)

    def on_message_complete(self) -> None:
        response = self.response
        if response is not None and self.head is None:
            response._finish()

    # ---- the pool's side ----------------------------------------------------------------

    def _until_close(self) -> bool:
        headers = self.response.headers if self.response is not None else {}
        return "content-length" not in headers and "chunked" not in headers.get(
            "transfer-encoding", ""
        )

    def _fail(self, error: Exception) -> None:
        head, self.head = self.head, None
        if head is not None and not head.done():
            head.set_exception(error)
        if self.response is not None:
            self.response._finish(error)

    def _shut(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def send(self, request: bytes, limit: int) -> asyncio.Future[Response]:
        """Write one request; the future resolves with the response once its head is in."""
        assert self.transport is not None
        self.response = Response(self, limit)
        self.head = asyncio.get_running_loop().create_future()
        self.sent += 1
        self.answered = False
        self.transport.write(request)
        return self.head

    def finished(self, response: Response, reusable: bool) -> None:
        """The caller is done with `response`: pool this connection or close it."""
        if response is not self.response:
            return
        self.response, self.head = None, None
        if reusable and self.keep_alive and not self.closed:
            if self.paused and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
            self.idle_since = time.monotonic()
            self.pool.park(self)
        else:
            self._shut()


class UpstreamHttp:
    """Keep-alive connections to upstreams, by host, port and TLS, opened through `guard`."""

    def __init__(
        self,
        guard: Guard,
        connect_timeout_s: float,
        tls: ssl.SSLContext | None = None,
        max_body_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.guard = guard
        self.connect_timeout_s = connect_timeout_s
        self.max_body_bytes = max_body_bytes  # a response's default limit
        self._idle: dict[tuple[str, int, bool], list[_Connection]] = {}
        self._all: set[_Connection] = set()
        self._targets: dict[str, _Target] = {}
        self._tls = tls  # https: the system's trust store unless given

    def _target(self, url: str) -> _Target:
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) > 4096:
                self._targets.clear()
            target = self._targets[url] = _Target(url)
        return target

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], limit: int | None = None
    ) -> Response:
        """POST `body`; returns once the response's head is in (read its body, then release).

        The body, or each SSE event of it, may be at most `limit` bytes (TooLarge)."""
        target = self._target(url)
        request = _encode(target, body, headers)
        limit = limit or self.max_body_bytes
        conn = self._pooled(target.key)
        if conn is not None:
            try:
                return await self._send(conn, request, limit)
            except ClosedIdle:  # as Go's net/http does: once more, on a new connection
                pass
        return await self._send(await self._connect(target), request, limit)

    async def _send(self, conn: _Connection, request: bytes, limit: int) -> Response:
        try:
            return await conn.send(request, limit)
        except BaseException:
            conn._shut()
            raise

    def _pooled(self, key: tuple[str, int, bool]) -> _Connection | None:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            transport = conn.transport
            if conn.closed or transport is None or transport.is_closing():
                continue
            if now - conn.idle_since > IDLE_S:
                conn._shut()
                continue
            return conn
        return None

    async def _connect(self, target: _Target) -> _Connection:
        tls: ssl.SSLContext | None = None
        if target.tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await self.guard.create_connection(
                    lambda: _Connection(self, target.key), target.host, target.port, ssl_context=tls
                )
        except TimeoutError:
            raise HttpFailure(f"connecting to {target.host_header} timed out") from None
        except SsrfRefused as exc:
            raise HttpFailure(f"refused by the SSRF rules: {exc}") from None
        except (OSError, ssl.SSLError) as exc:
            raise HttpFailure(f"cannot connect to {target.host_header}: {exc}") from None
        self._all.add(conn)
        return conn  # type: ignore[return-value]

    def park(self, conn: _Connection) -> None:
        """Keep an idle connection for the next request to its host."""
        self._idle.setdefault(conn.key, []).append(conn)

    def forget(self, conn: _Connection) -> None:
        """A connection closed: never hand it out again."""
        self._all.discard(conn)
        idle = self._idle.get(conn.key)
        if idle and conn in idle:
            idle.remove(conn)

    async def close(self) -> None:
        """Close every connection."""
        for conn in list(self._all):
            conn._shut()
        self._all.clear()
        self._idle.clear()


def _encode(target: _Target, body: bytes, headers: dict[str, Any]) -> bytes:
    """The request's bytes.

    Framing headers are ours; a value or name with a line break (header injection) or a
    character outside Latin-1 is refused."""
    lines = [f"POST {target.path} HTTP/1.1\r\n"]
    given: set[str] = set()
    for name, value in headers.items():
        lower = name.lower()
        if lower not in _FRAMING:
            given.add(lower)
            lines.append(f"{name}: {value}\r\n")
    if "host" not in given:
        lines.append(f"Host: {target.host_header}\r\n")
    if "user-agent" not in given:
        lines.append(f"User-Agent: {USER_AGENT}\r\n")
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    head = "".join(lines)
    breaks = len(lines) + 1  # one per line, and the blank line
    if head.count("\n") != breaks or head.count("\r") != breaks or "\0" in head:
        raise HttpFailure("a request header holds a line break")
    try:
        return head.encode("latin-1") + body
    except UnicodeEncodeError:
        raise HttpFailure("a request header holds a character outside Latin-1") from None
