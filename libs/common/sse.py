"""Server-sent events, parsed as the WHATWG HTML standard says: the one parser of the project.

- Lines end in CRLF, LF or CR, also when a chunk boundary splits the CRLF; a UTF-8 byte order
  mark at the very start is dropped.
- A line starting with `:` is a comment. `name: value` loses one space after the colon; a line
  without a colon is a field with an empty value. Unknown fields are ignored.
- `data` values are joined with LF. A blank line dispatches the event; an event with no `data`
  line is dispatched to nobody. An empty `data:` line makes an event whose data is empty: MCP
  servers (the TypeScript SDK among them) open every SSE response with such a priming event
  (`id:` + `retry:` + empty `data:`, SEP-1699) — it carries an id to resume from, no message.
- `id` (unless it holds NUL) sets the last event id, which stays until the next `id` and is what
  a client sends as `Last-Event-ID` to resume; `retry` (ASCII digits only) sets the
  reconnection time in milliseconds.
- An event the stream ends in the middle of (no blank line after it) is dropped.
- With `max_event_bytes`, an event (or a line) that grows past it raises `EventTooLarge` as
  soon as it does: a reader never holds more than that of one event.

Libraries exist (httpx-sse, sse-starlette's client side), each tied to one HTTP client; ours
must read the gateway's own keep-alive client and aiohttp alike, bytes in and bytes out.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

BOM = b"\xef\xbb\xbf"
LF, CR = 0x0A, 0x0D


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched event: its type, its data, and the stream's last event id at dispatch."""

    data: bytes
    event: str = "message"
    id: str | None = None


class EventTooLarge(ValueError):
    """An event (its data, or one line) passed the parser's limit."""


class Parser:
    """An incremental parser: `feed` bytes as they arrive, get the events they complete."""

    __slots__ = (
        "_buf",
        "_data",
        "_event",
        "_size",
        "_skip_lf",
        "_started",
        "last_id",
        "max_event_bytes",
        "retry_ms",
    )

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self.max_event_bytes = max_event_bytes
        self._size = 0  # data bytes of the event being read
        self._buf = bytearray()
        self._data: list[bytes] | None = None  # None: no data line since the last dispatch
        self._event = b""
        self._skip_lf = False  # the last chunk ended in CR: an LF starting the next one is its
        self._started = False
        self.last_id: str | None = None
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        """Parse the next bytes; return the events they complete, in order."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk[0] == LF:
                chunk = chunk[1:]
        buf = self._buf
        buf += chunk
        if not self._started:
            if len(buf) < len(BOM) and BOM.startswith(bytes(buf)):
                return []  # could still be a BOM
            self._started = True
            if buf.startswith(BOM):
                del buf[: len(BOM)]
        events: list[Event] = []
        pos, size = 0, len(buf)
        while pos < size:
            lf = buf.find(b"\n", pos)
            cr = buf.find(b"\r", pos, lf if lf >= 0 else size)
            if cr >= 0:
                end = cr
                if cr + 1 < size:
                    nxt = cr + 2 if buf[cr + 1] == LF else cr + 1
                else:
                    nxt, self._skip_lf = cr + 1, True
            elif lf >= 0:
                end, nxt = lf, lf + 1
            else:
                break
            event = self._line(bytes(buf[pos:end]))
            if event is not None:
                events.append(event)
            pos = nxt
        del buf[:pos]
        limit = self.max_event_bytes
        if limit is not None and len(buf) + self._size > limit:
            raise EventTooLarge(f"an event is larger than {limit} bytes")
        return events

    def _line(self, line: bytes) -> Event | None:
        """Process one line; a blank one dispatches."""
        if not line:
            return self._dispatch()
        colon = line.find(b":")
        if colon == 0:
            return None  # a comment
        if colon > 0:
            name, value = line[:colon], line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        else:
            name, value = line, b""
        if name == b"data":
            if self._data is None:
                self._data = []
            self._data.append(value)
            self._size += len(value) + 1
            if self.max_event_bytes is not None and self._size > self.max_event_bytes:
                raise EventTooLarge(f"an event is larger than {self.max_event_bytes} bytes")
        elif name == b"event":
            self._event = value
        elif name == b"id":
            if b"\0" not in value:
                self.last_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Event | None:
        """The event the buffers hold (None when no data line came), and reset them."""
        data, event = self._data, self._event
        self._data, self._event, self._size = None, b"", 0
        if data is None:
            return None
        name = event.decode("utf-8", "replace") if event else "message"
        return Event(b"\n".join(data), name, self.last_id)


async def events(
    chunks: AsyncIterable[bytes], parser: Parser | None = None, max_event_bytes: int | None = None
) -> AsyncIterator[Event]:
    """The events of a byte stream (any chunking), in order; pass a parser to read its ids.

    Raises EventTooLarge when an event passes `max_event_bytes` (or the parser's limit)."""
    parser = parser or Parser(max_event_bytes)
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
