"""Waiting on a condition with a deadline (never a bare sleep for correctness)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import nats


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.05)


async def consumer_idle(url: str, namespace: str) -> bool:
    """The durable consumer has nothing pending and nothing awaiting an ack."""
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(f"{namespace}_EVENTS", "audit-store")
        return info.num_pending == 0 and info.num_ack_pending == 0
    finally:
        await nc.close()
