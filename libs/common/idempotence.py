"""Apply each event once: a processed-events row in the handler's transaction, or an id cache."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

import asyncpg

from libs.common.bus import BatchHandler, Handler
from libs.common.events import Event

TxHandler = Callable[[asyncpg.Connection, Event], Awaitable[None]]
TxBatchHandler = Callable[[asyncpg.Connection, list[Event]], Awaitable[None]]


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


def transactional_batch(
    pool: asyncpg.Pool, schema: str, consumer: str, handler: TxBatchHandler
) -> BatchHandler:
    """Wrap `handler` so a batch is applied in one transaction, each event of it once.

    The batch's ids are recorded in one statement; `handler` gets only the events not applied
    before, in their order (an id twice in the batch, the first of them)."""

    async def run(events: list[Event]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f'INSERT INTO "{schema}".processed_events (consumer, event_id)'
                " SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
                consumer,
                [event.id for event in events],
            )
            if not rows:
                return
            ids = {row[0] for row in rows}
            fresh = []
            for event in events:
                if event.id in ids:
                    ids.discard(event.id)
                    fresh.append(event)
            await handler(conn, fresh)

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
