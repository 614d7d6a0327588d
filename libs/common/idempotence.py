"""Apply each event once: a processed-events row in the handler's transaction, or an id cache."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

import asyncpg

from libs.common.bus import Handler
from libs.common.events import Event

TxHandler = Callable[[asyncpg.Connection, Event], Awaitable[None]]


def transactional(pool: asyncpg.Pool, schema: str, consumer: str, handler: TxHandler) -> Handler:
    """Wrap `handler` so each event is applied once: its id is recorded in the same transaction."""

    async def run(event: Event) -> None:
        async with pool.acquire() as conn, conn.transaction():
            fresh = await conn.fetchval(
                f'INSERT INTO "{schema}".processed_events (consumer, event_id) VALUES ($1, $2)'
                " ON CONFLICT DO NOTHING RETURNING true",
                consumer,
                event.id,
            )
            if fresh:
                await handler(conn, event)

    return run


def deduplicated(handler: Handler, size: int = 10_000) -> Handler:
    """Wrap `handler` to skip event ids seen recently (for consumers without a database)."""
    seen: OrderedDict[str, None] = OrderedDict()

    async def run(event: Event) -> None:
        if event.id in seen:
            return
        await handler(event)
        seen[event.id] = None
        if len(seen) > size:
            seen.popitem(last=False)

    return run
