"""Audit's Postgres and JetStream figures, from the real server's statistics and stream info."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import httpx
import pytest
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from libs.common import bus as busmod
from libs.common.bus_access import platform_durables
from libs.devstack.harness import settings_for, until
from services.audit import platform_metrics
from services.audit.consumers import DURABLE
from services.audit.settings import AuditSettings
from tests.integration.audit.conftest import consumed
from tests.integration.audit.test_recording import tool_call
from tests.support.metrics import scrape, value

DEADLOCKS = "switchboard_postgres_deadlocks"


def sample(samples: dict, family: str, *labels: str) -> float:
    """The value of one sample a reader returned (KeyError when it is missing)."""
    return dict(samples[family])[labels]


async def test_metrics_carry_the_platform_database_and_stream_figures(
    api: httpx.AsyncClient, publisher: busmod.Bus, audit_pool: asyncpg.Pool
) -> None:
    await publisher.publish(tool_call("github"))
    await consumed(publisher)
    async with audit_pool.acquire() as conn:
        database = await conn.fetchval("SELECT current_database()")

    async def exported() -> dict | None:
        samples = await scrape(api)
        stream = value(samples, "switchboard_jetstream_stream_messages", stream="EVENTS")
        return samples if stream > 0 else None

    samples = await until(exported, timeout=20, what="the platform figures on /metrics")
    db = {"database": database}
    assert value(samples, "switchboard_postgres_connections", state="active", **db) >= 1
    assert value(samples, "switchboard_postgres_max_connections", **db) > 0
    assert value(samples, "switchboard_postgres_transactions_committed_total", **db) > 0
    assert value(samples, "switchboard_postgres_database_size_bytes", **db) > 1_000_000
    assert ("switchboard_postgres_deadlocks_total", frozenset(db.items())) in samples
    events = {"stream": "EVENTS"}
    assert value(samples, "switchboard_jetstream_stream_bytes", **events) > 0
    assert value(samples, "switchboard_jetstream_stream_consumers", **events) >= 1
    assert value(samples, "switchboard_jetstream_stream_replicas", **events) == 1
    assert value(samples, "switchboard_jetstream_stream_max_bytes", **events) == -1
    durable = {"stream": "EVENTS", "durable": DURABLE}
    key = ("switchboard_jetstream_consumer_pending_messages", frozenset(durable.items()))
    assert key in samples


async def test_a_real_deadlock_and_a_rollback_are_counted(audit_pool: asyncpg.Pool) -> None:
    table = f"audit.deadlock_probe_{secrets.token_hex(3)}"
    async with audit_pool.acquire() as conn:
        await conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, n int)")
        await conn.execute(f"INSERT INTO {table} VALUES (1, 0), (2, 0)")
    try:
        before = await platform_metrics.read_postgres(audit_pool)
        db = database_of(before)
        both_locked = asyncio.Barrier(2)

        async def lock(first: int, second: int) -> None:
            async with audit_pool.acquire() as conn, conn.transaction():
                await conn.execute(f"UPDATE {table} SET n = n + 1 WHERE id = $1", first)
                await both_locked.wait()
                await conn.execute(f"UPDATE {table} SET n = n + 1 WHERE id = $1", second)

        outcomes = await asyncio.gather(lock(1, 2), lock(2, 1), return_exceptions=True)
        assert any(isinstance(o, asyncpg.DeadlockDetectedError) for o in outcomes), outcomes

        async def counted() -> dict | None:
            after = await platform_metrics.read_postgres(audit_pool)
            return after if sample(after, DEADLOCKS, db) > sample(before, DEADLOCKS, db) else None

        # a backend reports its counters to the statistics system shortly after, not at once
        after = await until(counted, timeout=10, what="the deadlock counted")
        rolled = "switchboard_postgres_transactions_rolled_back"
        assert sample(after, rolled, db) > sample(before, rolled, db)
    finally:
        async with audit_pool.acquire() as conn:
            await conn.execute(f"DROP TABLE {table}")


def database_of(samples: dict) -> str:
    """The database label of a Postgres reading."""
    [(labels, _)] = samples["switchboard_postgres_max_connections"]
    return labels[0]


async def test_connections_are_counted_by_state(audit_pool: asyncpg.Pool) -> None:
    async with audit_pool.acquire() as idle_in_tx:
        transaction = idle_in_tx.transaction()
        await transaction.start()
        await idle_in_tx.execute("SELECT 1")
        try:
            figures = await platform_metrics.read_postgres(audit_pool)
        finally:
            await transaction.rollback()
    states = {labels[1]: n for labels, n in figures["switchboard_postgres_connections"]}
    assert states["idle_in_transaction"] >= 1
    assert states["active"] >= 1  # the reading's own query
    assert set(platform_metrics.STATES.values()) <= set(states)


@pytest.fixture
async def own_bus(pg_url: str, nats_url: str, namespace: str) -> busmod.Bus:
    """A bus in a namespace of its own: its streams and durables are the test's alone."""
    settings = settings_for(
        AuditSettings, pg_url=pg_url, nats_url=nats_url, namespace=f"{namespace}pm"
    )
    async with busmod.connect(settings) as bus:
        yield bus


async def test_a_durables_pending_ack_pending_and_redelivered_messages_are_read(
    own_bus: busmod.Bus,
) -> None:
    durable = platform_durables()[0]  # a platform durable no service runs in this namespace
    subject = own_bus.subject("events.demo.probe.made")
    config = ConsumerConfig(
        durable_name=durable,
        filter_subject=subject,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=0.5,
    )
    await own_bus.js.add_consumer(own_bus.stream, config)
    for n in range(5):
        await own_bus.js.publish(subject, str(n).encode())
    sub = await own_bus.js.pull_subscribe_bind(durable, stream=own_bus.stream)
    assert len(await sub.fetch(5, timeout=2)) == 5  # given, never acknowledged

    async def redelivered() -> bool:
        try:
            msgs = await sub.fetch(1, timeout=0.5)
        except (TimeoutError, NatsTimeout):
            return False
        return any(m.metadata.num_delivered > 1 for m in msgs)

    await until(redelivered, timeout=10, what="a message given again after ack_wait")
    for n in range(3):
        await own_bus.js.publish(subject, str(n).encode())
    figures = await platform_metrics.read_jetstream(own_bus)
    labels = ("EVENTS", durable)
    assert sample(figures, "switchboard_jetstream_consumer_redelivered_messages", *labels) >= 1
    assert sample(figures, "switchboard_jetstream_consumer_ack_pending_messages", *labels) == 5
    assert sample(figures, "switchboard_jetstream_consumer_pending_messages", *labels) == 3
    assert sample(figures, "switchboard_jetstream_stream_messages", "EVENTS") == 8
    assert sample(figures, "switchboard_jetstream_stream_consumers", "EVENTS") == 1


async def test_kv_bucket_streams_are_read_once_a_service_opened_them(own_bus: busmod.Bus) -> None:
    before = await platform_metrics.read_jetstream(own_bus)
    assert [labels for labels, _ in before["switchboard_jetstream_stream_messages"]] == [
        ("EVENTS",)
    ]
    kv = await own_bus.key_value("gateway_tasks", ttl_s=60)
    await kv.put("task", b"owner")
    after = await platform_metrics.read_jetstream(own_bus)
    assert sample(after, "switchboard_jetstream_stream_messages", "KV_gateway_tasks") == 1
