"""Collect events published on core NATS (JetStream publishes reach core subscribers too)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import nats

from libs.common.events import Event


class Events:
    """Events received on a subject pattern."""

    def __init__(self) -> None:
        self.items: list[Event] = []
        self.arrived = asyncio.Condition()

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 5) -> Event:
        """The first event (already seen or arriving) that matches."""
        async with asyncio.timeout(timeout), self.arrived:
            while True:
                for event in self.items:
                    if predicate(event):
                        return event
                await self.arrived.wait()


@asynccontextmanager
async def collecting(nats_url: str, subject: str) -> AsyncIterator[Events]:
    """Collect the events on `subject` (namespaced) while the block runs."""
    box = Events()
    nc = await nats.connect(nats_url)

    async def on_msg(msg: Any) -> None:
        async with box.arrived:
            box.items.append(Event.from_bytes(msg.data))
            box.arrived.notify_all()

    await nc.subscribe(subject, cb=on_msg)
    try:
        yield box
    finally:
        await nc.close()
