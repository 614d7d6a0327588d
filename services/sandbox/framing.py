"""Newline-delimited JSON-RPC with a hosted server: private ids, replies matched, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

import orjson

from libs.common.errors import UpstreamError, UpstreamTimeout

STREAM_LIMIT = 16 * 1024 * 1024  # the longest stdout line read (asyncio's stream limit)
NOT_SUPPORTED = {"code": -32601, "message": "Not supported by the host."}


class StdioChannel:
    """One process's stdin and stdout as a JSON-RPC channel.

    Our requests go out under private ids, and its replies come back to whoever waits for that
    id."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.stdin: asyncio.StreamWriter | None = None
        self.waiting: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._write_lock = asyncio.Lock()

    def attach(self, stdin: asyncio.StreamWriter | None) -> None:
        """Write to a newly started process from now on."""
        self.stdin = stdin

    @property
    def pending(self) -> int:
        """How many requests wait for a reply."""
        return len(self.waiting)

    async def send(self, message: dict[str, Any]) -> None:
        """Write one line to the process's stdin."""
        assert self.stdin is not None
        async with self._write_lock:
            try:
                self.stdin.write(orjson.dumps(message) + b"\n")
                await self.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                raise UpstreamError(f"Server {self.server!r} closed its input.") from None

    async def forward(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request under a private id; return the reply with the caller's id."""
        own_id = next(self._ids)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self.waiting[own_id] = future
        try:
            await self.send({**message, "id": own_id})
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            with contextlib.suppress(Exception):
                await self.send(
                    {
                        "jsonrpc": "2.0",
                        "method": "notifications/cancelled",
                        "params": {"requestId": own_id, "reason": "timeout"},
                    }
                )
            raise UpstreamTimeout(
                f"Server {self.server!r} did not answer in {timeout}s.",
                details={"server": self.server},
            ) from None
        finally:
            self.waiting.pop(own_id, None)
        return {**reply, "id": message.get("id")}

    async def read(self, stream: asyncio.StreamReader, on_text: Callable[[str], None]) -> None:
        """Dispatch replies until the stream ends.

        The server's own requests are answered method-not-found, and a line that is not JSON
        goes to `on_text` (raw, uncut)."""
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line over the limit
                on_text("a line over 16 MiB was dropped")
                continue
            if not raw:
                return
            try:
                msg = orjson.loads(raw)
            except orjson.JSONDecodeError:
                on_text(raw.decode(errors="replace").rstrip())
                continue
            if isinstance(msg, dict):
                await self._dispatch(msg)

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        """A reply to whoever waits for its id; a request of the server's own refused."""
        if "method" in msg and "id" in msg:
            with contextlib.suppress(Exception):
                await self.send({"jsonrpc": "2.0", "id": msg["id"], "error": NOT_SUPPORTED})
            return
        future = self.waiting.get(msg.get("id")) if "id" in msg else None
        if future is not None and not future.done():
            future.set_result(msg)

    def fail_all(self, error: Exception) -> None:
        """Fail every request still waiting (the process exited)."""
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(error)
