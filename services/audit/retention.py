"""Retention: delete records older than the configured days, in small batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from services.audit.store import activity, calls

log = structlog.get_logger()


async def purge(pool: asyncpg.Pool, days: int, batch: int) -> dict[str, int]:
    """Delete rows older than `days` batch by batch (each its own short transaction)."""
    cutoff = datetime.now(UTC) - timedelta(days=days)
    deleted = {"tool_calls": 0, "events": 0, "call_rollups": 0, "processed_events": 0}
    steps = (
        ("tool_calls", calls.delete_calls_before),
        ("events", activity.delete_events_before),
        ("processed_events", activity.delete_processed_before),
    )
    for name, delete in steps:
        while True:
            async with pool.acquire() as conn:
                n = await delete(conn, cutoff, batch)
            deleted[name] += n
            if n < batch:
                break
            await asyncio.sleep(0)  # let inserts in between
    async with pool.acquire() as conn:
        deleted["call_rollups"] = await calls.delete_rollups_before(conn, cutoff)
    return deleted


async def run_forever(pool: asyncpg.Pool, days: int, batch: int, interval_s: float) -> None:
    """Purge now and then every `interval_s`; failures are logged and retried next time."""
    while True:
        try:
            deleted = await purge(pool, days, batch)
            if any(deleted.values()):
                log.info("audit_retention_purged", **deleted)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("audit_retention_failed", error=str(exc))
        await asyncio.sleep(interval_s)
