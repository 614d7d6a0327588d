"""NATS: acked publishing, durable consumers with redelivery, dedup, RPC, the outbox."""

import asyncio
import secrets
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from libs.common import migrate, outbox
from libs.common.bus import Bus, RpcError
from libs.common.errors import Conflict, Unavailable, UpstreamError
from libs.common.events import Event, EventType
from libs.common.idempotence import transactional
from libs.common.rpc_types import Rpc

MIGRATIONS = Path(__file__).parents[2] / "fixtures" / "common" / "migrations"


@dataclass(frozen=True)
class Widget:
    """A demo payload."""

    name: str
    size: int = 0


def an_event(kind: str = "demo.widget.created", **data: object) -> Event:
    return Event(type=kind, source="demo", data=dict(data))


async def test_a_durable_consumer_redelivers_until_the_handler_succeeds(bus: Bus) -> None:
    seen: list[str] = []
    done = asyncio.Event()
    failures = {"left": 2}

    async def handler(event: Event) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("not yet")
        seen.append(event.id)
        done.set()

    kind = f"demo.retry{secrets.token_hex(2)}.done"
    bus.consume(f"demo-retry-{secrets.token_hex(2)}", [f"events.{kind}"], handler)
    event = an_event(kind)
    await bus.publish(event)
    async with asyncio.timeout(10):
        await done.wait()
    assert seen == [event.id]


async def test_a_payload_unlike_its_type_is_dropped_once_not_redelivered(bus: Bus) -> None:
    kind = EventType(f"demo.typed{secrets.token_hex(2)}.made", Widget)
    handled: list[str] = []
    good = asyncio.Event()

    async def handler(event: Event) -> None:
        handled.append(event.id)
        kind.decode(event)
        good.set()

    durable = f"demo-typed-{secrets.token_hex(2)}"
    bus.consume(durable, [f"events.{kind.name}"], handler)
    bad = Event(type=kind.name, source="demo", data={"size": 1})  # `name` is missing
    await bus.publish(bad)
    fine = kind.event(Widget("w", 2), source="demo")
    await bus.publish(fine)
    async with asyncio.timeout(10):
        await good.wait()
        # a nak'd event stays pending for its redelivery; a terminated one is done with
        while (await bus.js.consumer_info(bus.stream, durable)).num_ack_pending:
            await asyncio.sleep(0.05)
    assert handled == [bad.id, fine.id]


async def test_publishing_the_same_event_twice_is_stored_once(bus: Bus) -> None:
    event = an_event(f"demo.dup{secrets.token_hex(2)}.made")
    await bus.publish(event)
    await bus.publish(event)
    info = await bus.js.stream_info(bus.stream, subjects_filter=bus.subject(event.subject))
    assert info.state.subjects == {bus.subject(event.subject): 1}


async def test_a_publish_the_stream_does_not_take_is_an_error_not_a_silent_loss(bus: Bus) -> None:
    from nats.js.errors import APIError

    nowhere = an_event("demo.widget.created")
    bus.stream = bus.stream + "_other"  # the subject is the real stream's: JetStream refuses
    try:
        with pytest.raises(APIError):
            await bus.publish(nowhere)
    finally:
        bus.stream = bus.stream.removesuffix("_other")


async def test_concurrent_publishes_each_get_their_own_acknowledgement(bus: Bus) -> None:
    kind = f"demo.many{secrets.token_hex(2)}.made"
    events = [an_event(kind, n=i) for i in range(50)]
    await asyncio.gather(*(bus.publish(e) for e in events))
    info = await bus.js.stream_info(bus.stream, subjects_filter=bus.subject(f"events.{kind}"))
    assert info.state.subjects == {bus.subject(f"events.{kind}"): 50}
    assert bus._acks == {}  # every acknowledgement was claimed


async def test_a_lone_publish_is_written_at_once_and_concurrent_ones_together(bus: Bus) -> None:
    kind = f"demo.batch{secrets.token_hex(2)}.made"
    await bus.publish(an_event(kind, n=-1))  # the acknowledgements' inbox is subscribed
    transport = bus.nc._transport
    writes: list[int] = []  # how many publishes each write of the connection carried
    real = transport.writelines

    def counting(chunks: list[bytes]) -> None:
        writes.append(sum(chunk.startswith(b"HPUB ") for chunk in chunks))
        real(chunks)

    transport.writelines = counting
    try:
        # the first of one pass finds no other awaiting its acknowledgement: written at once;
        # the 19 after it in the same pass wait for its end, and go out in one write
        await asyncio.gather(*(bus.publish(an_event(kind, n=i)) for i in range(20)))
        await bus.publish(an_event(kind, n=20))  # alone: at once
    finally:
        del transport.writelines
    assert [n for n in writes if n] == [1, 19, 1]
    info = await bus.js.stream_info(bus.stream, subjects_filter=bus.subject(f"events.{kind}"))
    assert info.state.subjects == {bus.subject(f"events.{kind}"): 22}


async def test_a_publish_no_stream_takes_fails_at_once(bus: Bus) -> None:
    from nats.js.errors import NoStreamResponseError

    stray = Event(type="demo.widget.created", source="demo", data={})
    namespace = bus.namespace
    bus.namespace = f"{namespace}x"  # a subject no stream listens on: "no responders"
    try:
        async with asyncio.timeout(2):  # not the 5 s acknowledgement timeout
            with pytest.raises(NoStreamResponseError):
                await bus.publish(stray)
    finally:
        bus.namespace = namespace


async def test_transactional_handlers_apply_each_event_once(bus: Bus, pg_url: str) -> None:
    schema = f"c_{secrets.token_hex(3)}"
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=2)
    try:
        await migrate.apply(pool, schema=schema, directory=MIGRATIONS)

        async def insert(conn: asyncpg.Connection, event: Event) -> None:
            await conn.execute(
                f"INSERT INTO {schema}.widgets (name) VALUES ($1)", event.data["name"]
            )

        handle = transactional(pool, schema, "demo-store", insert)
        event = an_event(name="once")
        await handle(event)
        await handle(event)
        async with pool.acquire() as conn:
            assert await conn.fetchval(f"SELECT count(*) FROM {schema}.widgets") == 1
    finally:
        await pool.close()


async def test_rpc_returns_data_and_remote_errors(bus: Bus) -> None:
    async def handler(data: dict) -> dict:
        if data.get("fail"):
            raise Conflict("taken", details={"name": "x"})
        return {"echo": data["value"]}

    subject = f"rpc.demo.echo{secrets.token_hex(2)}"
    await bus.serve(subject, handler)
    assert await bus.request(subject, {"value": 7}) == {"echo": 7}
    with pytest.raises(RpcError) as err:
        await bus.request(subject, {"fail": True})
    assert (err.value.code, err.value.status, err.value.details) == ("CONFLICT", 409, {"name": "x"})


@dataclass(frozen=True)
class Sized:
    """A demo reply."""

    widget: Widget
    doubled: int


async def test_a_typed_rpc_speaks_the_same_json_as_an_untyped_one(bus: Bus) -> None:
    method = Rpc(f"rpc.demo.size{secrets.token_hex(2)}", Widget, Sized)

    async def handler(widget: Widget) -> Sized:
        return Sized(widget, widget.size * 2)

    await bus.answer(method, handler)
    assert await bus.call(method, Widget("w", 3)) == Sized(Widget("w", 3), 6)
    # an older caller (a dict out, a dict back) talks to the typed server unchanged
    raw = await bus.request(method.subject, {"name": "w", "size": 1, "newer": True})
    assert raw == {"widget": {"name": "w", "size": 1}, "doubled": 2}
    with pytest.raises(RpcError) as refused:
        await bus.request(method.subject, {"size": 1})
    assert (refused.value.status, refused.value.details) == (400, {"field": "name"})


async def test_a_reply_outside_the_contract_is_an_upstream_error(bus: Bus) -> None:
    method = Rpc(f"rpc.demo.odd{secrets.token_hex(2)}", Widget, Sized)

    async def handler(data: dict) -> dict:
        return {"doubled": "two"}

    await bus.serve(method.subject, handler)
    with pytest.raises(UpstreamError):
        await bus.call(method, Widget("w"))


async def test_rpc_without_responders_is_unavailable(bus: Bus) -> None:
    with pytest.raises(Unavailable):
        await bus.request("rpc.nobody.home", {}, timeout=1)


async def test_the_outbox_publishes_committed_events_only(bus: Bus, pg_url: str) -> None:
    schema = f"o_{secrets.token_hex(3)}"
    pool = await asyncpg.create_pool(pg_url, min_size=2, max_size=4)
    received: list[str] = []
    arrived = asyncio.Event()
    kind = f"demo.outbox{secrets.token_hex(2)}.made"

    async def on_event(event: Event) -> None:
        received.append(event.data["name"])
        arrived.set()

    await bus.follow(f"events.{kind}", on_event)
    try:
        await migrate.apply(pool, schema=schema, directory=MIGRATIONS)
        async with outbox.relaying(pool, schema, bus):
            async with pool.acquire() as conn:
                with pytest.raises(RuntimeError):
                    async with conn.transaction():
                        await outbox.enqueue(conn, schema, an_event(kind, name="rolled-back"))
                        raise RuntimeError("abort")
                async with conn.transaction():
                    await outbox.enqueue(conn, schema, an_event(kind, name="committed"))
            async with asyncio.timeout(5):
                await arrived.wait()
        assert received == ["committed"]
        async with pool.acquire() as conn:
            assert await conn.fetchval(f"SELECT count(*) FROM {schema}.outbox") == 0
    finally:
        await pool.close()


async def test_a_follower_stops_hearing_events_once_it_unsubscribes(bus: Bus) -> None:
    kind = f"demo.follow{secrets.token_hex(2)}.made"
    heard: list[str] = []
    arrived = asyncio.Event()

    async def on_event(event: Event) -> None:
        heard.append(event.data["name"])
        arrived.set()

    sub = await bus.follow(f"events.{kind}", on_event)
    await bus.publish(an_event(kind, name="first"))
    async with asyncio.timeout(5):
        await arrived.wait()
    await sub.unsubscribe()
    await bus.publish(an_event(kind, name="second"))
    await bus.nc.flush()
    await asyncio.sleep(0.2)
    assert heard == ["first"]


async def test_live_subjects_are_namespaced_and_answered_through_the_bus(bus: Bus) -> None:
    name = f"live.demo.{secrets.token_hex(2)}"
    heard: list[tuple[str, bytes]] = []
    arrived = asyncio.Event()

    async def on_msg(msg) -> None:  # type: ignore[no-untyped-def]
        heard.append((msg.subject, msg.data))
        if msg.reply:
            await msg.respond(b"pong:" + msg.data)
        arrived.set()

    sub = await bus.listen(name, on_msg)
    await bus.send(name, b"one")
    async with asyncio.timeout(5):
        await arrived.wait()
    assert heard == [(bus.subject(name), b"one")]
    assert bus.subject(name).startswith(bus.namespace + ".")
    reply = await bus.ask(name, b"two", timeout=5)
    assert reply.data == b"pong:two"
    assert bus.connected
    await sub.unsubscribe()


async def test_failed_publishes_count_as_publish_errors_and_good_ones_do_not(bus: Bus) -> None:
    from nats.js.errors import NoStreamResponseError
    from prometheus_client import REGISTRY

    def errors() -> float:
        labels = {"service": bus.source}
        return REGISTRY.get_sample_value("switchboard_nats_publish_errors_total", labels) or 0

    before = errors()
    await bus.publish(an_event())
    assert errors() == before
    namespace = bus.namespace
    bus.namespace = f"{namespace}x"  # a subject no stream listens on
    try:
        with pytest.raises(NoStreamResponseError):
            await bus.publish(Event(type="demo.widget.created", source="demo", data={}))
    finally:
        bus.namespace = namespace
    assert errors() == before + 1
