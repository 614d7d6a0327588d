"""Periodic health checks: due servers claimed replica-safely, checked with bounded concurrency.

A healthy remote server is probed (a session opened, nothing listed, nothing written) and listed
in full (its tools reconciled: changed descriptions quarantined) when its last full refresh by
this replica is REGISTRY_FULL_REFRESH_S old; any other server, or one whose probe fails, gets a
full refresh at every check.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from libs.common import log as logmod
from services.registry import metrics, refresh
from services.registry.context import Registry
from services.registry.store import servers as servers_store

log = logmod.get_logger("registry.health")

JITTER = 0.1  # each server's next check lands within ±10% of its interval
MAX_REMEMBERED = 100_000  # full-refresh times kept; beyond, all are forgotten (all get a full one)


class FullRefreshes:
    """When this replica last refreshed each server in full (monotonic seconds)."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.clock = clock
        self.at: dict[uuid.UUID, float] = {}

    def due(self, server: Any) -> bool:
        """Whether the check must list in full: not healthy, sandboxed, or not listed lately."""
        if server["status"] != "healthy" or server["transport"] in refresh.SANDBOXED:
            return True
        last = self.at.get(server["id"])
        return last is None or self.clock() - last >= self.every_s

    def done(self, server_id: uuid.UUID) -> None:
        """Note a full refresh now."""
        if len(self.at) >= MAX_REMEMBERED:
            self.at.clear()
        self.at[server_id] = self.clock()


async def check(reg: Registry, server: Any, full: FullRefreshes) -> None:
    """Check one claimed server: a probe, or a full refresh when due or when the probe fails."""
    if not full.due(server):
        answered = await refresh.probe(reg, server)
        metrics.count_check("probe", answered)
        if answered:
            return
        log.info("health_probe_failed", server=server["name"])
    outcome = await refresh.refresh(reg, server["id"])
    metrics.count_check("full", outcome["status"] == "healthy")
    full.done(server["id"])


async def check_due(reg: Registry, full: FullRefreshes) -> int:
    """Claim and check every server that is due now; returns how many were checked."""
    async with reg.pool.acquire() as conn:
        interval = float((await reg.config(conn))["health_interval_s"])
        due = await servers_store.claim_due(
            conn, reg.settings.health_concurrency * 4, interval, JITTER
        )
    if not due:
        return 0
    limit = asyncio.Semaphore(reg.settings.health_concurrency)

    async def one(server: Any) -> None:
        async with limit:
            try:
                await check(reg, server, full)
            except Exception:
                log.exception("health_check_failed", server=server["name"])

    await asyncio.gather(*(one(row) for row in due))
    return len(due)


@asynccontextmanager
async def running(reg: Registry) -> AsyncIterator[None]:
    """Check due servers in the background while the service runs."""
    full = FullRefreshes(reg.settings.full_refresh_s)

    async def loop() -> None:
        while True:
            try:
                checked = await check_due(reg, full)
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
