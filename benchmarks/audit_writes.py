"""Audit CPU per stored tool call: events published first, then the audit consumer drains them.

`python -m benchmarks.audit_writes [N] [RUNS]` (defaults 5000 and 3). Each run publishes N
`gateway.tool.called` events into a fresh namespace and database while no consumer runs, then
starts the audit consumer (`consumers.running`, in this process) and reads until all N records
are stored: the CPU time of this process (the consumer, plus a count query every 100 ms) and of
the Postgres backends it opened, per stored record. CPU time, not throughput: the machine is
shared, and CPU time hardly depends on what else runs.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import time

import asyncpg

from benchmarks.processes import cpu_s
from libs.common import bus as busmod
from libs.common import db, migrate
from libs.common import log as logging
from libs.common.events import TOOL_CALLED, ToolCalled
from libs.devstack import nats as devstack_nats
from libs.devstack import postgres
from libs.devstack.harness import settings_for
from services.audit import consumers
from services.audit.app import MIGRATIONS_DIR
from services.audit.settings import AuditSettings

PUBLISH_CONCURRENCY = 200


def tool_call(i: int) -> ToolCalled:
    """A call record as the gateway publishes one, arguments included."""
    return ToolCalled(
        server=f"server-{i % 4}",
        tool=f"tool-{i % 7}",
        status="error" if i % 50 == 0 else "ok",
        principal_kind="api_key",
        principal_id=f"user-{i % 10}",
        principal_name=f"user {i % 10}",
        credential_id="key-1",
        org="org-1",
        latency_ms=1.5 + i % 10,
        upstream_ms=1.0,
        request_bytes=120,
        response_bytes=480,
        arguments={"query": f"q{i}", "limit": 10, "token": "s3cret"},
        session_id=None,
        client="bench/1.0",
        tool_fingerprint="sha256:" + "ab" * 32,
    )


async def publish(bus: busmod.Bus, n: int) -> None:
    """Publish n tool calls, acknowledged by JetStream."""
    for start in range(0, n, PUBLISH_CONCURRENCY):
        await asyncio.gather(
            *(
                bus.publish(TOOL_CALLED.event(tool_call(i), source="gateway"))
                for i in range(start, min(start + PUBLISH_CONCURRENCY, n))
            )
        )


async def delete_stream(settings: AuditSettings) -> None:
    """Delete the run's EVENTS stream."""
    async with busmod.connect(settings, name="bench-cleanup") as bus:
        await bus.js.delete_stream(bus.stream)


async def backend_pids(conn: asyncpg.Connection, database: str) -> list[int]:
    """The Postgres backends on `database` other than `conn`'s own."""
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    return [r["pid"] for r in rows]


async def one_run(server_url: str, nats_url: str, n: int) -> tuple[float, float, float]:
    """Consumer CPU, Postgres CPU (seconds) and wall time to store n published calls."""
    name = f"bench_audit_{secrets.token_hex(4)}"
    namespace = f"b{secrets.token_hex(4)}"
    url = await postgres.create_database(server_url, name)
    settings = settings_for(AuditSettings, pg_url=url, nats_url=nats_url, namespace=namespace)
    try:
        async with db.open_pool(settings) as pool:
            await migrate.apply(pool, schema="audit", directory=MIGRATIONS_DIR)
        async with busmod.connect(settings, name="bench-publisher") as publisher:
            await publish(publisher, n)
        counter = await asyncpg.connect(url)
        try:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            # the pool opens after cpu0: its backends' whole CPU time is this run's
            async with (
                db.open_pool(settings) as pool,
                busmod.connect(settings) as bus,
                consumers.running(bus, pool, settings.arguments),
            ):
                while await counter.fetchval("SELECT count(*) FROM audit.tool_calls") < n:
                    await asyncio.sleep(0.1)
                cpu1, wall1 = time.process_time(), time.perf_counter()
                pg = sum(cpu_s(pid) for pid in await backend_pids(counter, name))
        finally:
            await counter.close()
    finally:
        await delete_stream(settings)
        await postgres.drop_database(server_url, name)
    return cpu1 - cpu0, pg, wall1 - wall0


async def main(n: int, runs: int) -> None:
    """Run and print µs of CPU per stored record, each run and the median."""
    logging.configure("audit", "warning")
    server = await postgres.ensure_postgres("pg-bench")
    nats_server = devstack_nats.ensure_nats("nats-bench")
    try:
        results = []
        for run in range(1, runs + 1):
            consumer, pg, wall = await one_run(server.url, nats_server.url, n)
            results.append((consumer, pg))
            print(
                f"run {run}: consumer {consumer / n * 1e6:.0f} µs/record,"
                f" postgres {pg / n * 1e6:.0f} µs/record, {n / wall:.0f} records/s wall",
                flush=True,
            )
        med_consumer = statistics.median(c for c, _ in results) / n * 1e6
        med_pg = statistics.median(p for _, p in results) / n * 1e6
        print(f"median: consumer {med_consumer:.0f} µs/record, postgres {med_pg:.0f} µs/record")
    finally:
        nats_server.stop()
        server.stop()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(args + [5000, 3][len(args) :])))
