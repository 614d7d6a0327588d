"""Nothing lost, nothing doubled: Postgres stopped hard and started again mid-stream.

The test runs its own Postgres cluster (it is killed, so it cannot be the shared one), with
synchronous_commit on: a commit the audit app saw (and then acked to JetStream) must survive
`pg_ctl stop -m immediate`, as it would on a production server.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import asyncpg
import httpx
import nats
import pytest

from libs.common.events import TOOL_CALLED, ToolCalled
from libs.devstack.harness import serving, settings_for, until
from services.audit.app import create_app
from services.audit.settings import AuditSettings
from tests.integration.audit.waiting import consumer_idle
from tests.support.private_postgres import PrivatePostgres

PUBLISHERS = 4
PER_PUBLISHER = 200
PACE_S = 0.01  # each publisher runs for at least PER_PUBLISHER * PACE_S = 2 s


@pytest.fixture
async def private_pg() -> AsyncIterator[PrivatePostgres]:
    """A private cluster in a temporary directory, stopped and removed afterwards."""
    # pytest's tmp_path is private to root; the cluster runs as an unprivileged user
    base = Path(tempfile.mkdtemp(prefix="sb-pg-restart-"))
    server = PrivatePostgres(base)
    try:
        await server.start()
        yield server
    finally:
        await server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


async def run_publisher(url: str, namespace: str, server: str, n: int, pace_s: float) -> None:
    """A gateway-like publisher: `n` tool calls, each retried until JetStream has it (same id)."""
    nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream()
        for i in range(n):
            event = TOOL_CALLED.event(
                ToolCalled(server=server, tool=f"t{i % 3}", status="ok", latency_ms=float(i)),
                source="gateway",
            )
            while True:
                try:
                    await js.publish(
                        f"{namespace}.{event.subject}",
                        event.to_bytes(),
                        stream=f"{namespace}_EVENTS",
                        timeout=1,
                        headers={"Nats-Msg-Id": event.id},
                    )
                    break
                except Exception:
                    await asyncio.sleep(0.1)
            await asyncio.sleep(pace_s)
    finally:
        await nc.close()


async def counts(url: str, server: str) -> tuple[int, int, int] | None:
    """(rows, distinct ids, rolled-up calls) of `server`; None while Postgres is away."""
    try:
        conn = await asyncpg.connect(url, timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return tuple(
            await conn.fetchrow(
                "SELECT count(*), count(DISTINCT id),"
                " (SELECT coalesce(sum(calls), 0) FROM audit.call_rollups WHERE server = $1)"
                " FROM audit.tool_calls WHERE server = $1",
                server,
            )
        )
    except (OSError, asyncpg.PostgresError):
        return None
    finally:
        await conn.close()


async def stored(url: str, server: str) -> int:
    """Rows stored for `server` (0 while Postgres is away)."""
    got = await counts(url, server)
    return got[0] if got else 0


async def ready(http: httpx.AsyncClient) -> int:
    """The /readyz status code."""
    return (await http.get("/readyz")).status_code


async def test_restarting_postgres_mid_stream_loses_and_doubles_nothing(
    private_pg: PrivatePostgres, nats_url: str
) -> None:
    namespace = f"pg{uuid.uuid4().hex[:8]}"
    settings = settings_for(
        AuditSettings,
        pg_url=private_pg.url,
        nats_url=nats_url,
        namespace=namespace,
        AUDIT_ACK_WAIT_S=2,
        AUDIT_ALERT_INTERVAL_S="0.5",
        AUDIT_HEALTH_INTERVAL_S="0.5",
        AUDIT_MONITORING_INTERVAL_S="0.5",
    )
    server = f"pgrestart-{uuid.uuid4().hex[:8]}"
    total = PUBLISHERS * PER_PUBLISHER
    publishers: asyncio.Future | None = None
    try:
        async with (
            serving(create_app(settings)) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=5) as http,
        ):
            assert await ready(http) == 200
            assert await listening(private_pg.url, "audit_outbox")
            publishers = asyncio.gather(
                *(
                    run_publisher(nats_url, namespace, server, PER_PUBLISHER, PACE_S)
                    for _ in range(PUBLISHERS)
                )
            )
            await until(lambda: _at_least(private_pg.url, server, 100), timeout=15)

            # mid-stream: publishers still sending, handlers mid-commit
            await private_pg.stop("immediate")
            killed_at = time.monotonic()
            assert not publishers.done(), "the stream ended before Postgres was stopped"
            await until(lambda: _status_is(http, 503), timeout=10)
            assert await counts(private_pg.url, server) is None  # really down
            # events keep arriving while it is down: JetStream holds them, the app naks them
            in_stream = await stream_messages(nats_url, namespace)
            await until(
                lambda: _more_than(stream_messages(nats_url, namespace), in_stream + 100),
                timeout=10,
            )

            await private_pg.start()
            started_at = time.monotonic()
            await until(lambda: _status_is(http, 200), timeout=15)
            ready_after = time.monotonic() - started_at
            # the outbox relay's LISTEN died with its connection; it must listen again
            await until(lambda: listening(private_pg.url, "audit_outbox"), timeout=10)

            async with asyncio.timeout(20):
                await publishers
            await until(lambda: _at_least(private_pg.url, server, total), timeout=20)
            caught_up_after = time.monotonic() - started_at
            # let any redelivery (wrongly) double a record before counting
            await until(lambda: consumer_idle(nats_url, namespace), timeout=15)
            final = await counts(private_pg.url, server)
            redelivered = await redeliveries(nats_url, namespace)
        print(
            f"\npostgres restart: {total} calls; down {started_at - killed_at:.2f} s;"
            f" /readyz ready {ready_after:.2f} s after start; all stored"
            f" {caught_up_after:.2f} s after start; {redelivered} deliveries were redeliveries"
        )
        assert final == (total, total, total)  # rows, distinct ids, rolled-up calls
        assert redelivered > 0  # the outage made handlers fail, and those events came back
    finally:
        if publishers is not None and not publishers.done():
            publishers.cancel()
            with contextlib.suppress(BaseException):
                await publishers
        from tests.conftest import delete_streams

        await delete_streams(nats_url, namespace)


async def listening(url: str, channel: str) -> bool:
    """Some audit app session has LISTENed on `channel` (its last statement)."""
    conn = await asyncpg.connect(url, timeout=2)
    try:
        return await conn.fetchval(
            "SELECT count(*) > 0 FROM pg_stat_activity"
            " WHERE application_name = 'switchboard-audit' AND query ILIKE $1",
            f"LISTEN%{channel}%",
        )
    finally:
        await conn.close()


async def stream_messages(url: str, namespace: str) -> int:
    """Messages in the namespace's EVENTS stream."""
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(f"{namespace}_EVENTS")).state.messages
    finally:
        await nc.close()


async def redeliveries(url: str, namespace: str) -> int:
    """Deliveries of the durable consumer beyond the first of each message."""
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(f"{namespace}_EVENTS", "audit-store")
        return (info.delivered.consumer_seq or 0) - (info.delivered.stream_seq or 0)
    finally:
        await nc.close()


async def _more_than(value: Awaitable[int], n: int) -> bool:
    """`value` exceeds n."""
    return await value > n


async def _at_least(url: str, server: str, n: int) -> bool:
    """At least n calls of `server` stored."""
    return await stored(url, server) >= n


async def _status_is(http: httpx.AsyncClient, status: int) -> bool:
    """/readyz answers `status`."""
    return await ready(http) == status
