"""Audit metrics: the audit-store consumer's lag, records written and their write latency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram

from libs.common.events import Event

log = structlog.get_logger()

CONSUMER_PENDING = Gauge(
    "switchboard_audit_consumer_pending_messages",
    "Messages of the EVENTS stream the durable consumer has not yet been given (its lag), "
    "read from JetStream's consumer info periodically.",
    ["durable"],
)
CONSUMER_ACK_PENDING = Gauge(
    "switchboard_audit_consumer_ack_pending_messages",
    "Messages given to the durable consumer and not yet acknowledged.",
    ["durable"],
)
LAG_READ_FAILURES = Counter(
    "switchboard_audit_consumer_lag_read_failures_total",
    "Periodic reads of the consumer's info that failed (NATS away, consumer missing).",
    ["durable"],
)
RECORD_KINDS = ("call", "activity", "replica")
RECORDS_WRITTEN = Counter(
    "switchboard_audit_records_written_total",
    "Events applied to the audit store, by kind: call (tool-call records), activity, replica "
    "(service heartbeats and starts). Redelivered duplicates are not counted.",
    ["kind"],
)
WRITE_SECONDS = Histogram(
    "switchboard_audit_write_duration_seconds",
    "Time to apply one batch of events (a fetch's, or one event when a batch falls back to one"
    " by one) to the audit store: its transaction, commit included.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_WRITTEN = {kind: RECORDS_WRITTEN.labels(kind) for kind in RECORD_KINDS}


def measured(
    apply: Callable[[Event], Awaitable[None]], written: dict[str, str]
) -> Callable[[Event], Awaitable[None]]:
    """Wrap the transactional handler: time it, count what it wrote once it committed.

    The inner handler leaves the kind of a fresh event in `written` (by event id); a duplicate
    leaves nothing and is not counted; a failed one is neither counted nor timed."""

    async def run(event: Event) -> None:
        t0 = time.perf_counter()
        try:
            await apply(event)
        except BaseException:
            written.pop(event.id, None)
            raise
        WRITE_SECONDS.observe(time.perf_counter() - t0)
        kind = written.pop(event.id, None)
        if kind is not None:
            _WRITTEN[kind].inc()

    return run


def measured_batch(
    apply: Callable[[list[Event]], Awaitable[None]], written: dict[str, str]
) -> Callable[[list[Event]], Awaitable[None]]:
    """`measured` for a batch: one latency per batch, the records it wrote counted by kind."""

    async def run(events: list[Event]) -> None:
        t0 = time.perf_counter()
        try:
            await apply(events)
        except BaseException:
            for event in events:
                written.pop(event.id, None)
            raise
        WRITE_SECONDS.observe(time.perf_counter() - t0)
        counts: dict[str, int] = {}
        for event in events:
            kind = written.pop(event.id, None)
            if kind is not None:
                counts[kind] = counts.get(kind, 0) + 1
        for kind, n in counts.items():
            _WRITTEN[kind].inc(n)

    return run


async def read_lag(bus: Any, durable: str) -> bool:
    """Set the lag gauges from the consumer's info; False when it could not be read."""
    try:
        info = await bus.js.consumer_info(bus.stream, durable)
    except Exception as exc:
        LAG_READ_FAILURES.labels(durable).inc()
        log.debug("audit_lag_not_read", error=str(exc) or type(exc).__name__)
        return False
    CONSUMER_PENDING.labels(durable).set(info.num_pending or 0)
    CONSUMER_ACK_PENDING.labels(durable).set(info.num_ack_pending or 0)
    return True


async def watch_lag(bus: Any, durable: str, interval_s: float) -> None:
    """Read the consumer's lag every `interval_s` (not per message), until cancelled."""
    while True:
        read = await read_lag(bus, durable)
        # until the consumer exists (created as the service starts), look again soon
        await asyncio.sleep(interval_s if read else min(interval_s, 1.0))
