"""Audit's /metrics: records written by kind, write latency, the consumer's lag."""

from __future__ import annotations

import secrets

import asyncpg
import httpx
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from libs.common import bus as busmod
from libs.devstack.harness import until
from services.audit.consumers import DURABLE
from services.audit.metrics import read_lag
from tests.integration.audit.conftest import consumed
from tests.integration.audit.test_recording import record, tool_call
from tests.support.metrics import scrape, value

WRITTEN = "switchboard_audit_records_written_total"
WRITE_COUNT = "switchboard_audit_write_duration_seconds_count"
PENDING = "switchboard_audit_consumer_pending_messages"


async def test_records_written_and_write_latency_move_once_per_event(
    api: httpx.AsyncClient, audit_pool: asyncpg.Pool, publisher: busmod.Bus
) -> None:
    await consumed(publisher)
    before = await scrape(api)
    first, second = tool_call("github"), tool_call("github", tool="fetch")
    for event in (first, second):
        await publisher.publish(event)
    for event in (first, second):
        await until(lambda e=event: record(audit_pool, e.id))

    async def counted() -> bool:
        now = await scrape(api)
        return value(now, WRITTEN, kind="call") - value(before, WRITTEN, kind="call") >= 2

    await until(counted, what="two call records counted")
    await consumed(publisher)
    settled = await scrape(api)
    # a redelivered duplicate (same event id) writes nothing and is not counted as written
    await publisher.js.publish(
        publisher.subject(first.subject), first.to_bytes()
    )  # no Nats-Msg-Id: the stream keeps it, the consumer sees it again
    await consumed(publisher)
    after = await scrape(api)
    assert value(after, WRITTEN, kind="call") == value(settled, WRITTEN, kind="call")
    assert value(after, WRITE_COUNT) > value(before, WRITE_COUNT)
    assert value(after, WRITE_COUNT) > value(settled, WRITE_COUNT)  # the duplicate was applied


async def test_the_consumer_lag_is_exported(api: httpx.AsyncClient, publisher: busmod.Bus) -> None:
    await consumed(publisher)
    key = ("switchboard_audit_consumer_pending_messages", frozenset({("durable", DURABLE)}))

    async def exported() -> dict | None:
        samples = await scrape(api)
        return samples if key in samples else None

    samples = await until(exported, timeout=5, what="the consumer's lag on /metrics")
    assert value(samples, "switchboard_nats_connected", service="audit") == 1


async def test_the_lag_is_what_the_consumer_has_not_been_given(
    api: httpx.AsyncClient, publisher: busmod.Bus
) -> None:
    # a durable nobody reads, from now on: three events published are its lag
    probe = f"lag-probe-{secrets.token_hex(3)}"
    events = [tool_call("github") for _ in range(3)]
    config = ConsumerConfig(
        durable_name=probe,
        filter_subject=publisher.subject(events[0].subject),
        deliver_policy=DeliverPolicy.NEW,
        ack_policy=AckPolicy.EXPLICIT,
    )
    await publisher.js.add_consumer(publisher.stream, config)
    try:
        for event in events:
            await publisher.publish(event)
        assert await read_lag(publisher, probe)
        samples = await scrape(api)
        assert value(samples, PENDING, durable=probe) == 3
        assert value(samples, "switchboard_audit_consumer_ack_pending_messages", durable=probe) == 0
    finally:
        await publisher.js.delete_consumer(publisher.stream, probe)
