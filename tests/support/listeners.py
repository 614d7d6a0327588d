"""Plain TCP listeners that record what reaches them, and a DNS the test controls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Listener:
    """A plain HTTP/1.1 server on one address that counts connections and answers `reply`."""

    host: str
    reply: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)
    port: int = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            self.heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(self.reply)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def listening(host: str, reply: bytes | None = None) -> AsyncIterator[Listener]:
    """A Listener on `host` and a free port."""
    listener = Listener(host) if reply is None else Listener(host, reply)
    server = await asyncio.start_server(listener._serve, host, 0)
    listener.port = server.sockets[0].getsockname()[1]
    try:
        yield listener
    finally:
        server.close()
        await server.wait_closed()


class Rebinder:
    """A DNS server the test controls: each lookup of a name gets the next answer in turn."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        turns = self.answers.get(host)
        if not turns:
            raise OSError(f"{host}: no such name")
        return turns.pop(0) if len(turns) > 1 else turns[0]
