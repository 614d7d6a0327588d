"""The transactional outbox: an event is stored with the change, then relayed to JetStream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import structlog

from libs.common.bus import Bus
from libs.common.events import Event

log = structlog.get_logger()

BATCH = 200
IDLE_POLL_S = 1.0


def _channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel that wakes the relay."""
    return f"{schema}_outbox"


async def enqueue(conn: asyncpg.Connection, schema: str, event: Event) -> None:
    """Store `event` in the caller's transaction; it is published after commit."""
    await conn.execute(
        f'INSERT INTO "{schema}".outbox (event_id, subject, payload) VALUES ($1, $2, $3)',
        event.id,
        event.subject,
        event.to_bytes(),
    )
    await conn.execute("SELECT pg_notify($1, '')", _channel(schema))


async def relay_once(pool: asyncpg.Pool, schema: str, bus: Bus) -> int:
    """Publish up to BATCH stored events in order, deleting each once JetStream has it."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            f'SELECT seq, event_id, subject, payload FROM "{schema}".outbox'
            " ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
            BATCH,
        )
        done: list[int] = []
        for row in rows:
            await bus.js.publish(
                bus.subject(row["subject"]),
                row["payload"],
                stream=bus.stream,
                headers={"Nats-Msg-Id": str(row["event_id"])},
            )
            done.append(row["seq"])
        if done:
            await conn.execute(f'DELETE FROM "{schema}".outbox WHERE seq = ANY($1)', done)
    return len(rows)


@asynccontextmanager
async def relaying(pool: asyncpg.Pool, schema: str, bus: Bus) -> AsyncIterator[None]:
    """Run the relay while the service runs; woken by NOTIFY, polling as a fallback."""
    wake = asyncio.Event()

    def on_notify(*_: object) -> None:
        wake.set()

    lost = asyncio.Event()  # the listening connection died (e.g. Postgres restarted)

    def on_lost(*_: object) -> None:
        lost.set()
        wake.set()

    async def listen() -> asyncpg.Connection:
        lost.clear()
        conn = await pool.acquire()
        try:
            conn.add_termination_listener(on_lost)
            await conn.add_listener(_channel(schema), on_notify)
        except BaseException:
            await pool.release(conn)
            raise
        return conn

    listener: asyncpg.Connection | None = await listen()
    stopping = False

    async def loop() -> None:
        nonlocal listener
        while not stopping:
            try:
                if listener is None or lost.is_set():
                    # the LISTEN died with its connection (asyncpg detached it): listen again
                    if listener is not None:
                        with contextlib.suppress(Exception):
                            await pool.release(listener)
                        listener = None
                    listener = await listen()
                while await relay_once(pool, schema, bus) == BATCH:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS or Postgres away: the rows stay and are retried
                log.warning("outbox_relay_retrying", schema=schema, error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), IDLE_POLL_S)
            wake.clear()

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        # let a batch in flight finish: cancelling mid-publish would roll back and resend it
        stopping = True
        wake.set()
        try:
            await asyncio.wait_for(task, 5)
        except (TimeoutError, asyncio.CancelledError):
            pass
        with contextlib.suppress(Exception):
            await relay_once(pool, schema, bus)
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.remove_listener(_channel(schema), on_notify)
            with contextlib.suppress(Exception):
                await pool.release(listener)
