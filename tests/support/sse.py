"""Server-sent events as tests read them: the project's own parser (libs/common/sse.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from libs.common.sse import Event, Parser, events


def events_of(body: bytes) -> list[Event]:
    """The events of a whole SSE body (a last event not followed by a blank line included)."""
    return Parser().feed(body + b"\n\n")


def messages(body: bytes) -> list[Any]:
    """The JSON messages of a whole SSE body (events without data skipped)."""
    return [orjson.loads(e.data) for e in events_of(body) if e.data]


async def stream_events(resp: httpx.Response) -> AsyncIterator[Event]:
    """The events of a streamed response, as they arrive."""
    async for event in events(resp.aiter_bytes()):
        yield event


async def stream_messages(resp: httpx.Response) -> AsyncIterator[Any]:
    """The JSON messages of a streamed response, as they arrive."""
    async for event in events(resp.aiter_bytes()):
        if event.data:
            yield orjson.loads(event.data)
