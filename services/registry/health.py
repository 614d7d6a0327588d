"""Periodic health checks: due servers claimed replica-safely, checked with bounded concurrency."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog

from services.registry import refresh
from services.registry.context import Registry
from services.registry.store import servers as servers_store

log = structlog.get_logger()

JITTER = 0.1  # each server's next check lands within ±10% of its interval


async def check_due(reg: Registry) -> int:
    """Claim and check every server that is due now; returns how many were checked."""
    async with reg.pool.acquire() as conn:
        interval = float((await reg.config(conn))["health_interval_s"])
        due = await servers_store.claim_due(
            conn, reg.settings.health_concurrency * 4, interval, JITTER
        )
    if not due:
        return 0
    limit = asyncio.Semaphore(reg.settings.health_concurrency)

    async def one(server_id: object, name: str) -> None:
        async with limit:
            try:
                await refresh.refresh(reg, server_id)  # type: ignore[arg-type]
            except Exception:
                log.exception("health_check_failed", server=name)

    await asyncio.gather(*(one(row["id"], row["name"]) for row in due))
    return len(due)


@asynccontextmanager
async def running(reg: Registry) -> AsyncIterator[None]:
    """Check due servers in the background while the service runs."""

    async def loop() -> None:
        while True:
            try:
                checked = await check_due(reg)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("health_round_failed", error=str(exc))
                checked = 0
            async with reg.pool.acquire() as conn:
                interval = float((await reg.config(conn))["health_interval_s"])
            # poll often enough that a server is checked within its interval (plus jitter)
            await asyncio.sleep(0 if checked else min(1.0, interval / 4))

    task = asyncio.create_task(loop()) if reg.settings.health_enabled else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def figures(reg: Registry) -> dict[str, Any]:
    """What the registry's heartbeat adds for GET /api/v1/health (the mcphubs seed's counts)."""
    async with reg.pool.acquire() as conn:
        servers, tools = await servers_store.count_servers_and_tools(conn)
        cfg = await reg.config(conn)
    return {"servers_count": servers, "total_tools": tools, "exposure_mode": cfg["exposure_mode"]}
