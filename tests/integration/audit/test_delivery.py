"""Nothing lost, nothing doubled: restarts of the audit app and of NATS, and shared replicas."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import nats
import pytest

from libs.common.events import TOOL_CALLED, Event, ToolCalled
from libs.devstack.harness import serving, until
from services.audit.app import create_app
from tests.integration.audit.conftest import audit_settings_for
from tests.integration.audit.private_nats import PrivateNats
from tests.integration.audit.waiting import consumer_idle

PUBLISHERS = 4
PER_PUBLISHER = 150


async def publish_with_retry(js, subject: str, stream: str, event: Event) -> None:
    """Publish until JetStream acknowledges (the same Nats-Msg-Id, so retries never double)."""
    while True:
        try:
            await js.publish(
                subject,
                event.to_bytes(),
                stream=stream,
                timeout=1,
                headers={"Nats-Msg-Id": event.id},
            )
            return
        except Exception:
            await asyncio.sleep(0.1)


async def run_publisher(url: str, namespace: str, server: str, n: int, paced: float) -> None:
    """One gateway-like publisher sending `n` tool calls for `server`."""
    nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream()
        for i in range(n):
            event = TOOL_CALLED.event(
                ToolCalled(server=server, tool=f"t{i % 3}", status="ok", latency_ms=float(i)),
                source="gateway",
            )
            await publish_with_retry(
                js, f"{namespace}.{event.subject}", f"{namespace}_EVENTS", event
            )
            await asyncio.sleep(paced)
    finally:
        await nc.close()


async def count_calls(pool: asyncpg.Pool, server: str) -> int:
    """Stored calls of `server`."""
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM audit.tool_calls WHERE server = $1", server
        )


@pytest.fixture
async def private_nats(tmp_path: Path) -> AsyncIterator[PrivateNats]:
    """A NATS server only this test uses, so it may be killed."""
    server = PrivateNats(tmp_path / "js")
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


async def test_restarting_the_audit_app_and_nats_mid_stream_loses_and_doubles_nothing(
    pg_url: str, audit_pool: asyncpg.Pool, private_nats: PrivateNats
) -> None:
    namespace = f"r{uuid.uuid4().hex[:8]}"
    settings = audit_settings_for(pg_url, private_nats.url, namespace)
    server = f"restart-{uuid.uuid4().hex[:8]}"
    total = PUBLISHERS * PER_PUBLISHER
    async with serving(create_app(settings)):  # creates the stream and the durable consumer
        pass
    publishers = asyncio.gather(
        *(
            run_publisher(private_nats.url, namespace, server, PER_PUBLISHER, 0.004)
            for _ in range(PUBLISHERS)
        )
    )
    try:
        for _ in range(2):  # the audit app, restarted twice while events flow
            async with serving(create_app(settings)):
                await until(lambda: count_calls(audit_pool, server), timeout=15)
                seen = await count_calls(audit_pool, server)
                # more arrive while this replica runs (all of them, if the publishers are done)
                more = min(seen + 50, total)
                await until(lambda m=more: _at_least(audit_pool, server, m), timeout=15)
        async with serving(create_app(settings)):
            await private_nats.kill()  # NATS crashes mid-stream, then comes back on its store
            await asyncio.sleep(0.5)  # let publishers hit the outage (not a correctness wait)
            await private_nats.start()
            await asyncio.wait_for(publishers, 60)
            await until(lambda: _at_least(audit_pool, server, total), timeout=30)
            # give any redelivery a chance to (wrongly) double a record before counting
            await until(lambda: consumer_idle(private_nats.url, namespace), timeout=30)
    finally:
        if not publishers.done():
            publishers.cancel()
            with contextlib.suppress(BaseException):
                await publishers
    assert await count_calls(audit_pool, server) == total
    async with audit_pool.acquire() as conn:
        rolled = await conn.fetchval(
            "SELECT sum(calls) FROM audit.call_rollups WHERE server = $1", server
        )
    assert rolled == total


async def _at_least(pool: asyncpg.Pool, server: str, n: int) -> bool:
    """At least n calls stored."""
    return await count_calls(pool, server) >= n


async def test_two_audit_replicas_share_the_durable_consumer_without_doubling(
    pg_url: str, nats_url: str, audit_pool: asyncpg.Pool
) -> None:
    namespace = f"s{uuid.uuid4().hex[:8]}"
    settings_a = audit_settings_for(pg_url, nats_url, namespace, SWITCHBOARD_INSTANCE="audit-a")
    settings_b = audit_settings_for(pg_url, nats_url, namespace, SWITCHBOARD_INSTANCE="audit-b")
    server = f"shared-{uuid.uuid4().hex[:8]}"
    total = 300
    try:
        async with serving(create_app(settings_a)), serving(create_app(settings_b)):
            await asyncio.gather(
                *(run_publisher(nats_url, namespace, server, total // 3, 0) for _ in range(3))
            )
            await until(lambda: _at_least(audit_pool, server, total), timeout=30)
            await until(lambda: consumer_idle(nats_url, namespace), timeout=30)
            nc = await nats.connect(nats_url)
            try:
                info = await nc.jetstream().consumer_info(f"{namespace}_EVENTS", "audit-store")
            finally:
                await nc.close()
        assert await count_calls(audit_pool, server) == total
        assert info.delivered.stream_seq >= total
    finally:
        from tests.conftest import delete_streams

        await delete_streams(nats_url, namespace)
