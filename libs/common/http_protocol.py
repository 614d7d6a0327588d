"""uvicorn's httptools protocol, sending a response's head and first body chunk in one write.

uvicorn writes the status line and headers, then the body, as two `transport.write` calls, so
every response costs two send syscalls and the peer (nginx, a client) may wake up twice. Here the
transport is wrapped: a write that is a complete response head is held, and goes out joined with
the next write (the body, when the app sends it right away: one syscall), or on the next pass of
the event loop at the latest (a streamed response whose body comes later is not delayed). Order is
always kept, so a write mistaken for a head only changes timing, never what is sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_START = b"HTTP/1.1 "
HEAD_END = b"\r\n\r\n"


class CoalescingTransport:
    """A transport proxy that joins a response head with the write that follows it."""

    __slots__ = ("_head", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hold a complete response head; send it joined with the next write, or send now."""
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head + bytes(data))
        elif isinstance(data, bytes) and data.startswith(HEAD_START) and data.endswith(HEAD_END):
            self._head = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        """Send a held head, then `chunks`."""
        self.flush()
        self._transport.writelines(chunks)

    def write_eof(self) -> None:
        """Send a held head, then close the write side."""
        self.flush()
        self._transport.write_eof()

    def flush(self) -> None:
        """Send a held head now."""
        head = self._head
        if head is not None:
            self._head = None
            self._transport.write(head)

    def close(self) -> None:
        """Send a held head, then close the transport."""
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol over a `CoalescingTransport` (pass as uvicorn's `http=`)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the connection on `transport` wrapped in a `CoalescingTransport`."""
        wrapped = CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(wrapped)  # type: ignore[arg-type]
