"""One measured run of the whole-stack benchmark: the load, every process's CPU, audit rows."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg

from benchmarks.load import drive
from benchmarks.processes import Selector, box_busy_s, self_cpu_s, snapshot, spent

SETTLE_S = 30.0  # how long the audit consumer may take to store a run's records
SERVED = "switchboard_gateway_tool_calls_total"  # the gateway's count of the calls it answered


@dataclass
class Watch:
    """What every run reads: the processes on the path and the audit's table."""

    groups: dict[str, Selector]  # the processes of each row, picked from /proc at each reading
    audit: asyncpg.Connection  # as the admin, on the stack's database
    metrics: list[str]  # the /metrics URL of each gateway replica

    async def served(self) -> int:
        """The tools/calls the gateway replicas have answered so far.

        wrk counts only the answers it read: the calls in flight when it stops are served and
        recorded too."""
        total = 0.0
        async with aiohttp.ClientSession() as http:
            for url in self.metrics:
                async with http.get(url) as resp:
                    text = await resp.text()
                total += sum(
                    float(line.rpartition(" ")[2])
                    for line in text.splitlines()
                    if line.startswith(SERVED + "{")
                )
        return int(total)

    async def stored(self) -> int:
        """The tool calls the audit service has stored so far."""
        return int(await self.audit.fetchval("SELECT count(*) FROM audit.tool_calls"))

    async def settled(self, want: int) -> int:
        """The stored calls, once there are `want` and no more arrive (SETTLE_S at most)."""
        deadline = time.monotonic() + SETTLE_S
        last = await self.stored()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            now = await self.stored()
            if now >= want and now == last:
                return now
            last = now
        return last


async def measured(
    watch: Watch, url: str, payload: bytes, hdrs: dict, conc: int, audited: bool
) -> dict[str, Any]:
    """drive(), then the CPU microseconds per call of each group, the box and the load generator.

    With `audited`, the run ends when the audit service has stored its calls (so its CPU for
    them is counted): `stored` says how many rows it added, `served` how many calls the gateway
    answered."""
    rows, served = (await watch.stored(), await watch.served()) if audited else (0, 0)
    cpu, box, gen = snapshot(watch.groups), box_busy_s(), self_cpu_s()
    result: dict[str, Any] = await drive(url, payload, hdrs, conc)
    gen = self_cpu_s() - gen  # before this process starts polling the audit's table
    if audited:
        result["stored"] = await watch.settled(rows + result["calls"]) - rows
    used = spent(cpu, snapshot(watch.groups))
    box = box_busy_s() - box
    if audited:
        result["served"] = await watch.served() - served
    calls = max(result["calls"], 1)
    result["cpu_us"] = {k: v * 1e6 / calls for k, v in used.items()}
    result["cpu_us"]["loadgen"] = gen * 1e6 / calls
    result["box_us"] = box * 1e6 / calls
    return result
