"""Postgres and JetStream figures of the whole platform, read by audit when Prometheus scrapes.

One service exports them, not each: the database and the NATS server are shared, and five
services (times their replicas) asking the same views would multiply the load and the series.
Audit is the one because it already reads JetStream's consumer info and holds a pool that is
not on a request path. Figures are read at scrape time, at most once per
AUDIT_PLATFORM_METRICS_S (15 s) however often Prometheus scrapes (libs/common/scraped.py); with
several audit replicas, each exports the same figures (dashboards and alerts take `max`)."""

from __future__ import annotations

from typing import Any

from nats.js.errors import NotFoundError

from libs.common import scraped
from libs.common.bus_access import platform_durables, platform_streams
from services.audit.store import platform_stats

# pg_stat_activity states, named as labels (each exported, 0 when no connection has it)
STATES = {
    "active": "active",
    "idle": "idle",
    "idle in transaction": "idle_in_transaction",
    "idle in transaction (aborted)": "idle_in_transaction_aborted",
    "fastpath function call": "fastpath_function_call",
    "disabled": "disabled",
}
UNSEEN = "unknown"  # a session whose state the role may not read (no pg_monitor)

POSTGRES = scraped.register(
    scraped.Scraped(
        "postgres",
        (
            scraped.Family(
                "switchboard_postgres_connections",
                "Client connections to the platform database by state (pg_stat_activity).",
                ("database", "state"),
            ),
            scraped.Family(
                "switchboard_postgres_max_connections",
                "The server's max_connections.",
                ("database",),
            ),
            scraped.Family(
                "switchboard_postgres_transactions_committed",
                "Transactions committed in the platform database (pg_stat_database.xact_commit).",
                ("database",),
                counter=True,
            ),
            scraped.Family(
                "switchboard_postgres_transactions_rolled_back",
                "Transactions rolled back (pg_stat_database.xact_rollback).",
                ("database",),
                counter=True,
            ),
            scraped.Family(
                "switchboard_postgres_deadlocks",
                "Deadlocks detected in the platform database (pg_stat_database.deadlocks).",
                ("database",),
                counter=True,
            ),
            scraped.Family(
                "switchboard_postgres_database_size_bytes",
                "Size of the platform database on disk (pg_database_size).",
                ("database",),
            ),
        ),
        ttl_s=15.0,
    )
)
JETSTREAM = scraped.register(
    scraped.Scraped(
        "jetstream",
        (
            scraped.Family(
                "switchboard_jetstream_stream_messages",
                "Messages stored in each platform stream (EVENTS and the KV buckets' streams).",
                ("stream",),
            ),
            scraped.Family(
                "switchboard_jetstream_stream_bytes",
                "Bytes stored in each platform stream.",
                ("stream",),
            ),
            scraped.Family(
                "switchboard_jetstream_stream_max_bytes",
                "Each stream's byte limit (-1: none; EVENTS: NATS_STREAM_MAX_BYTES).",
                ("stream",),
            ),
            scraped.Family(
                "switchboard_jetstream_stream_consumers",
                "Consumers of each platform stream.",
                ("stream",),
            ),
            scraped.Family(
                "switchboard_jetstream_stream_replicas",
                "Copies of each stream JetStream is configured to keep (NATS_STREAM_REPLICAS).",
                ("stream",),
            ),
            scraped.Family(
                "switchboard_jetstream_consumer_pending_messages",
                "Messages each durable consumer has not yet been given (num_pending).",
                ("stream", "durable"),
            ),
            scraped.Family(
                "switchboard_jetstream_consumer_ack_pending_messages",
                "Messages given to each durable consumer and not yet acknowledged.",
                ("stream", "durable"),
            ),
            scraped.Family(
                "switchboard_jetstream_consumer_redelivered_messages",
                "Messages each durable consumer has been given more than once and not yet "
                "acknowledged (num_redelivered).",
                ("stream", "durable"),
            ),
        ),
        ttl_s=15.0,
    )
)


def attach(pool: Any, bus: Any, ttl_s: float) -> tuple[scraped.Reader, scraped.Reader]:
    """Export the figures of this pool's database and this bus's streams from now on."""

    async def postgres() -> scraped.Samples:
        return await read_postgres(pool)

    async def jetstream() -> scraped.Samples:
        return await read_jetstream(bus)

    POSTGRES.attach(postgres, ttl_s)
    JETSTREAM.attach(jetstream, ttl_s)
    return postgres, jetstream


def detach(readers: tuple[scraped.Reader, scraped.Reader]) -> None:
    """Stop exporting through the readers `attach` returned."""
    POSTGRES.detach(readers[0])
    JETSTREAM.detach(readers[1])


async def read_postgres(pool: Any) -> scraped.Samples:
    """The platform database's figures from Postgres's statistics views."""
    async with pool.acquire() as conn:
        stats = await platform_stats.get_database_stats(conn)
        rows = await platform_stats.list_connections_by_state(conn)
    database = stats["datname"]
    counts = dict.fromkeys(STATES.values(), 0)
    for row in rows:
        state = STATES.get(row["state"], UNSEEN) if row["state"] is not None else UNSEEN
        counts[state] = counts.get(state, 0) + row["connections"]
    one = (database,)
    return {
        "switchboard_postgres_connections": [((database, s), n) for s, n in counts.items()],
        "switchboard_postgres_max_connections": [(one, float(stats["max_connections"]))],
        "switchboard_postgres_transactions_committed": [(one, float(stats["xact_commit"]))],
        "switchboard_postgres_transactions_rolled_back": [(one, float(stats["xact_rollback"]))],
        "switchboard_postgres_deadlocks": [(one, float(stats["deadlocks"]))],
        "switchboard_postgres_database_size_bytes": [(one, float(stats["size_bytes"]))],
    }


async def read_jetstream(bus: Any) -> scraped.Samples:
    """Each platform stream's and durable's figures from JetStream (missing ones skipped)."""
    out: scraped.Samples = {family.name: [] for family in JETSTREAM.families}
    prefix = f"{bus.namespace}_" if bus.namespace else ""
    for stream in platform_streams(bus.namespace):
        try:
            info = await bus.js.stream_info(stream)
        except NotFoundError:
            continue  # a bucket no service has opened yet
        label = (_unprefixed(stream, prefix),)
        state = info.state
        out["switchboard_jetstream_stream_messages"].append((label, state.messages))
        out["switchboard_jetstream_stream_bytes"].append((label, state.bytes))
        out["switchboard_jetstream_stream_max_bytes"].append((label, info.config.max_bytes or -1))
        out["switchboard_jetstream_stream_consumers"].append((label, state.consumer_count))
        out["switchboard_jetstream_stream_replicas"].append((label, info.config.num_replicas or 1))
    for durable in platform_durables():
        try:
            consumer = await bus.js.consumer_info(bus.stream, durable)
        except NotFoundError:
            continue  # its service has not started yet
        labels = (_unprefixed(bus.stream, prefix), durable)
        pending = "switchboard_jetstream_consumer_pending_messages"
        out[pending].append((labels, consumer.num_pending or 0))
        ack_pending = "switchboard_jetstream_consumer_ack_pending_messages"
        out[ack_pending].append((labels, consumer.num_ack_pending or 0))
        redelivered = "switchboard_jetstream_consumer_redelivered_messages"
        out[redelivered].append((labels, consumer.num_redelivered or 0))
    return out


def _unprefixed(stream: str, prefix: str) -> str:
    """A stream's name without the namespace (EVENTS, KV_gateway), as tests and prod share it."""
    if stream.startswith("KV_"):
        return "KV_" + stream[3:].removeprefix(prefix)
    return stream.removeprefix(prefix)
