"""Batch consumers: a fetch handled at once, acked after; a failing batch taken event by event."""

import asyncio
import contextlib
import secrets
from pathlib import Path

import asyncpg
import orjson
import pytest
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from libs.common import migrate
from libs.common.bus import Bus
from libs.common.events import Event, PayloadError
from libs.common.idempotence import transactional_batch

MIGRATIONS = Path(__file__).parents[2] / "fixtures" / "common" / "migrations"


def events_of(kind: str, n: int) -> list[Event]:
    return [Event(type=kind, source="demo", data={"n": i}) for i in range(n)]


async def idle(bus: Bus, durable: str) -> None:
    """Wait until the consumer has been given everything and has nothing unacknowledged."""
    async with asyncio.timeout(10):
        while True:
            with contextlib.suppress(NotFoundError):  # created by the consumer's task
                info = await bus.js.consumer_info(bus.stream, durable)
                if info.num_pending == 0 and info.num_ack_pending == 0:
                    return
            await asyncio.sleep(0.05)


async def terminations(bus: Bus, durable: str) -> asyncio.Queue[bytes]:
    """The messages JetStream reports terminated by `durable` (their data), as it happens."""
    found: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_advisory(msg: Msg) -> None:
        stored = await bus.js.get_msg(bus.stream, orjson.loads(msg.data)["stream_seq"])
        found.put_nowait(stored.data or b"")

    subject = f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{bus.stream}.{durable}"
    await bus.nc.subscribe(subject, cb=on_advisory)
    return found


async def test_a_fetch_is_handed_over_as_one_batch_and_acked_after_it(bus: Bus) -> None:
    kind = f"demo.batch{secrets.token_hex(2)}.made"
    published = events_of(kind, 5)
    for event in published:
        await bus.publish(event)
    batches: list[list[str]] = []

    async def handler(events: list[Event]) -> None:
        batches.append([e.id for e in events])

    async def one(event: Event) -> None:
        raise AssertionError("a batch that succeeds is not handled again")

    durable = f"demo-batch-{secrets.token_hex(2)}"
    bus.consume_batches(durable, [f"events.{kind}"], handler, one)
    await idle(bus, durable)
    assert batches == [[e.id for e in published]]  # in order, all five at once
    info = await bus.js.consumer_info(bus.stream, durable)
    assert info.ack_floor.stream_seq == info.delivered.stream_seq  # every message acked


@pytest.mark.parametrize(
    ("linger_s", "gathered"), [(0.0, False), (0.2, True)], ids=["no-linger", "linger"]
)
async def test_with_a_linger_events_sent_one_at_a_time_are_stored_in_batches(
    bus: Bus, linger_s: float, gathered: bool
) -> None:
    kind = f"demo.trickle{secrets.token_hex(2)}.made"
    published = events_of(kind, 12)
    batches: list[int] = []

    async def handler(events: list[Event]) -> None:
        batches.append(len(events))

    async def one(event: Event) -> None:
        raise AssertionError("a batch that succeeds is not handled again")

    durable = f"demo-trickle-{secrets.token_hex(2)}"
    bus.consume_batches(durable, [f"events.{kind}"], handler, one, linger_s=linger_s)
    await asyncio.sleep(0.3)  # the consumer is waiting for its first event
    for event in published:  # a trickle: one event every 20 ms
        await bus.publish(event)
        await asyncio.sleep(0.02)
    await idle(bus, durable)
    assert sum(batches) == 12
    # lingering 0.2 s, the 12 events (0.24 s) come in two or three batches; without, mostly alone
    assert (len(batches) <= 4) is gathered, batches


async def test_a_failing_batch_is_handled_again_one_by_one_so_only_the_poison_is_terminated(
    bus: Bus,
) -> None:
    kind = f"demo.poison{secrets.token_hex(2)}.made"
    published = events_of(kind, 5)
    poison = published[2]
    for event in published:
        await bus.publish(event)
    durable = f"demo-poison-{secrets.token_hex(2)}"
    terminated = await terminations(bus, durable)
    batches: list[int] = []
    handled: list[str] = []

    async def handler(events: list[Event]) -> None:
        batches.append(len(events))
        if poison in events:
            raise PayloadError("the poison's payload is unlike its type")
        handled.extend(e.id for e in events)

    async def one(event: Event) -> None:
        if event == poison:
            raise PayloadError("the poison's payload is unlike its type")
        handled.append(event.id)

    bus.consume_batches(durable, [f"events.{kind}"], handler, one)
    await idle(bus, durable)
    assert batches == [5]
    assert handled == [e.id for e in published if e != poison]  # each once, in order
    async with asyncio.timeout(5):
        assert Event.from_bytes(await terminated.get()) == poison
    info = await bus.js.consumer_info(bus.stream, durable)
    assert info.num_redelivered == 0  # none of the others came back
    assert terminated.empty()


async def test_a_dependency_away_redelivers_the_whole_batch(bus: Bus) -> None:
    kind = f"demo.away{secrets.token_hex(2)}.made"
    published = events_of(kind, 3)
    for event in published:
        await bus.publish(event)
    batches: list[list[str]] = []
    done = asyncio.Event()

    async def handler(events: list[Event]) -> None:
        batches.append([e.id for e in events])
        if len(batches) == 1:
            raise ConnectionRefusedError("Postgres is restarting")
        if len({i for b in batches[1:] for i in b}) == len(published):
            done.set()

    async def one(event: Event) -> None:
        raise AssertionError("a dependency away is waited for, not handled one by one")

    durable = f"demo-away-{secrets.token_hex(2)}"
    bus.consume_batches(durable, [f"events.{kind}"], handler, one)
    async with asyncio.timeout(10):
        await done.wait()
    await idle(bus, durable)
    ids = [e.id for e in published]
    assert batches[0] == ids
    assert sorted(i for b in batches[1:] for i in b) == sorted(ids)  # each once more


async def test_a_malformed_envelope_is_terminated_and_the_rest_batched(bus: Bus) -> None:
    kind = f"demo.mixed{secrets.token_hex(2)}.made"
    first, last = events_of(kind, 2)
    await bus.publish(first)
    await bus.js.publish(bus.subject(f"events.{kind}"), b"not an envelope", stream=bus.stream)
    await bus.publish(last)
    durable = f"demo-mixed-{secrets.token_hex(2)}"
    terminated = await terminations(bus, durable)
    batches: list[list[str]] = []

    async def handler(events: list[Event]) -> None:
        batches.append([e.id for e in events])

    async def one(event: Event) -> None:
        raise AssertionError("the batch did not fail")

    bus.consume_batches(durable, [f"events.{kind}"], handler, one)
    await idle(bus, durable)
    assert batches == [[first.id, last.id]]
    async with asyncio.timeout(5):
        assert await terminated.get() == b"not an envelope"


async def test_transactional_batches_apply_each_event_once(pg_url: str) -> None:
    schema = f"b_{secrets.token_hex(3)}"
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)
    try:
        await migrate.apply(pool, schema=schema, directory=MIGRATIONS)
        given: list[list[str]] = []

        async def insert(conn: asyncpg.Connection, events: list[Event]) -> None:
            given.append([e.data["name"] for e in events])
            await conn.executemany(
                f"INSERT INTO {schema}.widgets (name) VALUES ($1)",
                [(e.data["name"],) for e in events],
            )

        handle = transactional_batch(pool, schema, "demo-store", insert)
        a, b, c = (Event(type="demo.widget.made", source="demo", data={"name": n}) for n in "abc")
        await handle([a, b, a])  # an id twice in one batch: applied once
        await handle([b, c, a])  # redelivered with a new one: only the new one is applied
        await handle([a, b, c])  # all applied before: the handler is not called
        async with pool.acquire() as conn:
            names = await conn.fetch(f"SELECT name FROM {schema}.widgets ORDER BY name")
        assert [r["name"] for r in names] == ["a", "b", "c"]
        assert given == [["a", "b"], ["c"]]
    finally:
        await pool.close()
