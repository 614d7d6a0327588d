"""The audit consumer applies each fetch as one batch: poison events, redelivery, settings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest
from nats.aio.msg import Msg

from libs.common import bus as busmod
from libs.common.events import TOOL_CALLED, Event
from libs.common.idempotence import transactional_batch
from libs.devstack.harness import until
from services.audit import consumers
from services.audit.consumers import DURABLE
from tests.conftest import delete_streams
from tests.integration.audit import registry_events
from tests.integration.audit.conftest import audit_settings_for
from tests.integration.audit.test_recording import record, tool_call
from tests.integration.audit.waiting import consumer_idle


@pytest.fixture
async def own_bus(pg_url: str, nats_url: str) -> AsyncIterator[busmod.Bus]:
    """A bus on a namespace of its own: events published there wait until a consumer starts."""
    namespace = f"b{uuid.uuid4().hex[:8]}"
    async with busmod.connect(audit_settings_for(pg_url, nats_url, namespace)) as bus:
        yield bus
    await delete_streams(nats_url, namespace)


async def consume_all(bus: busmod.Bus, pool: asyncpg.Pool, nats_url: str) -> None:
    """Run the audit consumer on what `bus` holds until it is idle."""
    async with consumers.running(bus, pool, "keys"):
        await until(lambda: consumer_idle(nats_url, bus.namespace), timeout=15)


async def stored(pool: asyncpg.Pool, server: str) -> tuple[list[str], int]:
    """The ids of the calls stored for `server` and the calls its rollups count."""
    async with pool.acquire() as conn:
        ids = await conn.fetch(
            "SELECT id::text FROM audit.tool_calls WHERE server = $1 ORDER BY id", server
        )
        rolled = await conn.fetchval(
            "SELECT coalesce(sum(calls), 0) FROM audit.call_rollups WHERE server = $1", server
        )
    return [r["id"] for r in ids], rolled


async def test_a_batch_with_a_poison_event_stores_every_other_record_once_and_terminates_it(
    own_bus: busmod.Bus, audit_pool: asyncpg.Pool, nats_url: str
) -> None:
    server = f"poison-{uuid.uuid4().hex[:8]}"
    calls = [tool_call(server, tool=f"t{i}") for i in range(4)]
    poison = Event(type=TOOL_CALLED.name, source="gateway", data={"tool": "no server"})
    for event in [*calls[:2], poison, *calls[2:]]:
        await own_bus.publish(event)
    terminated: asyncio.Queue[int] = asyncio.Queue()

    async def on_advisory(msg: Msg) -> None:
        terminated.put_nowait(orjson.loads(msg.data)["stream_seq"])

    await own_bus.nc.subscribe(
        f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{own_bus.stream}.{DURABLE}", cb=on_advisory
    )
    await consume_all(own_bus, audit_pool, nats_url)
    ids, rolled = await stored(audit_pool, server)
    assert ids == sorted(e.id for e in calls)
    assert rolled == len(calls)
    async with asyncio.timeout(5):
        seq = await terminated.get()
    assert Event.from_bytes((await own_bus.js.get_msg(own_bus.stream, seq)).data) == poison
    assert terminated.empty()
    info = await own_bus.js.consumer_info(own_bus.stream, DURABLE)
    assert info.num_redelivered == 0  # the others were acked, not sent again


async def test_a_batch_redelivered_after_its_commit_stores_nothing_twice(
    own_bus: busmod.Bus, audit_pool: asyncpg.Pool, nats_url: str
) -> None:
    server = f"again-{uuid.uuid4().hex[:8]}"
    calls = [tool_call(server, tool=f"t{i % 2}", latency_ms=float(i)) for i in range(5)]
    # the consumer committed the first four, then died before acking them
    apply = transactional_batch(audit_pool, "audit", DURABLE, consumers.make_batch_handler("keys"))
    await apply(calls[:4])
    for event in calls:  # JetStream delivers them again, with one never applied
        await own_bus.publish(event)
    await consume_all(own_bus, audit_pool, nats_url)
    ids, rolled = await stored(audit_pool, server)
    assert ids == sorted(e.id for e in calls)
    assert rolled == len(calls)
    async with audit_pool.acquire() as conn:
        latency = await conn.fetchval(
            "SELECT sum(latency_sum) FROM audit.call_rollups WHERE server = $1", server
        )
    assert latency == sum(range(5))


async def test_a_settings_change_mid_batch_applies_to_the_later_calls_only(
    audit_pool: asyncpg.Pool, clean: None
) -> None:
    arguments = {"query": "hello", "password": "hunter2"}
    before = tool_call("github", arguments=arguments)
    after = tool_call("github", arguments=arguments)
    setting = registry_events.setting("audit_arguments", "full")
    apply = transactional_batch(audit_pool, "audit", DURABLE, consumers.make_batch_handler("keys"))
    try:
        await apply([before, setting, after])
        stored_before = await record(audit_pool, before.id)
        stored_after = await record(audit_pool, after.id)
    finally:
        async with audit_pool.acquire() as conn:
            await conn.execute("DELETE FROM audit.settings WHERE key = 'audit_arguments'")
    assert stored_before is not None and stored_after is not None
    assert stored_before["arguments"] == {"query": "[redacted]", "password": "[redacted]"}
    assert stored_after["arguments"] == {"query": "hello", "password": "[redacted]"}
