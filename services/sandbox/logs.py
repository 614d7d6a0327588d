"""Hosted servers' logs: lines cut from a stream, bounded buffers per server with followers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from libs.common.events import now_iso

LEVELS = ("debug", "info", "warning", "error")
LEVEL_RE = re.compile(r"\b(DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL)\b")
CUT_MARK = " [… {n} bytes cut]"
CUT_RE = re.compile(r" \[… \d+ bytes cut\]$")
MASK = "[masked]"
MIN_SECRET = 6  # shorter values ("1", "eu", "true") are not masked: they would mask everything
MIN_PARTIAL = 4  # the start of a secret cut off at the end of a long line


def line_level(text: str, stream: str) -> str:
    """Guess a log line's level from its text."""
    match = LEVEL_RE.search(text[:200])
    if match is None:
        return "info"
    word = match.group(1)
    return {"WARN": "warning", "CRITICAL": "error", "FATAL": "error"}.get(word, word.lower())


def cut(text: str, limit: int) -> str:
    """`text` within `limit` UTF-8 bytes, saying how much was cut."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[:limit].decode(errors="ignore") + CUT_MARK.format(n=len(data) - limit)


class SecretMask:
    """Replaces a server's secret values (its env, decrypted) wherever they appear in a line."""

    def __init__(self, values: Iterable[str]) -> None:
        self.secrets = sorted({v for v in values if len(v) >= MIN_SECRET}, key=len, reverse=True)
        joined = "|".join(re.escape(v) for v in self.secrets)
        self._re = re.compile(joined) if joined else None

    def __call__(self, text: str) -> str:
        """The text with every secret masked (and a secret's start cut off by a line limit)."""
        if self._re is None:
            return text
        text = self._re.sub(MASK, text)
        mark = CUT_RE.search(text)
        if mark is not None:
            body = text[: mark.start()]
            for secret in self.secrets:
                for size in range(min(len(secret) - 1, len(body)), MIN_PARTIAL - 1, -1):
                    if body.endswith(secret[:size]):
                        return body[:-size] + MASK + mark.group(0)
        return text


class LineSplitter:
    """Cuts a byte stream into lines of at most `limit` bytes without ever holding more.

    The rest of a longer line is counted and dropped up to its newline."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._pending = bytearray()
        self._dropped = 0  # bytes of the current line beyond the limit

    def feed(self, chunk: bytes) -> list[str]:
        """The lines completed by `chunk`."""
        out: list[str] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._take(chunk[start:end])
            out.append(self._flush())
            start = end + 1
        self._take(chunk[start:])
        return out

    def close(self) -> list[str]:
        """The last, unterminated line, if any."""
        return [self._flush()] if self._pending or self._dropped else []

    def _take(self, data: bytes) -> None:
        """Keep what fits in the current line, count the rest."""
        room = max(self.limit - len(self._pending), 0)
        self._pending += data[:room]
        self._dropped += max(len(data) - room, 0)

    def _flush(self) -> str:
        """The current line as text, with a mark when it was cut."""
        text = self._pending.decode(errors="replace").rstrip("\r")
        if self._dropped:
            text += CUT_MARK.format(n=self._dropped)
        self._pending.clear()
        self._dropped = 0
        return text


class LogBuffer:
    """The last log lines of one server; new lines go to followers too.

    At most `size` lines and `max_bytes` bytes of text, each line at most `line_bytes`."""

    def __init__(self, size: int, max_bytes: int, line_bytes: int) -> None:
        self.lines: deque[dict[str, Any]] = deque()
        self.size = size
        self.max_bytes = max_bytes
        self.line_bytes = line_bytes
        self.bytes = 0
        self.followers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._seq = itertools.count(1)

    def append(self, server: str, stream: str, text: str) -> dict[str, Any]:
        """Store one line (oldest ones leave to stay in bounds) and hand it to followers."""
        text = cut(text, self.line_bytes)
        line = {
            "seq": next(self._seq),
            "time": now_iso(),
            "server": server,
            "stream": stream,
            "level": line_level(text, stream),
            "message": text,
        }
        self.lines.append(line)
        self.bytes += len(text.encode())
        while self.lines and (len(self.lines) > self.size or self.bytes > self.max_bytes):
            self.bytes -= len(self.lines.popleft()["message"].encode())
        for queue in list(self.followers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(line)
        return line

    def query(self, level: str | None, limit: int, since: str | None) -> list[dict[str, Any]]:
        """Lines at or above `level`, after `since`, the last `limit` of them."""
        floor = LEVELS.index(level) if level in LEVELS else 0
        picked = [
            ln
            for ln in self.lines
            if LEVELS.index(ln["level"]) >= floor and (since is None or ln["time"] > since)
        ]
        return picked[-limit:]


LogHook = Callable[[dict[str, Any]], Awaitable[None]]


class ServerLogs:
    """The log buffer of each hosted server on this replica, each line also published live."""

    def __init__(self, lines: int, max_bytes: int, line_bytes: int, on_log: LogHook | None) -> None:
        self.sizes = (lines, max_bytes, line_bytes)
        self.on_log = on_log
        self.buffers: dict[str, LogBuffer] = {}
        self._tasks: set[asyncio.Task] = set()

    def log(self, server: str, stream: str, text: str) -> None:
        """Record a log line and publish it live."""
        line = self.buffer(server).append(server, stream, text)
        if self.on_log is not None:
            task = asyncio.create_task(self.on_log(line))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def buffer(self, server: str) -> LogBuffer:
        """The log buffer of a server (created empty)."""
        buf = self.buffers.get(server)
        if buf is None:
            buf = self.buffers[server] = LogBuffer(*self.sizes)
        return buf

    async def drain(self) -> None:
        """Wait for the lines still being published."""
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task


async def read_lines(
    stream: asyncio.StreamReader, line_bytes: int, on_line: Callable[[str], None]
) -> None:
    """Hand each line of a stream to `on_line`, cut to `line_bytes` while reading, to its end."""
    lines = LineSplitter(line_bytes)
    while chunk := await stream.read(65536):
        for text in lines.feed(chunk):
            on_line(text)
    for text in lines.close():
        on_line(text)
