"""GET /api/v1/health as the mcphubs seed reads it: servers, tools, exposure mode, CPU, memory."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from libs.common import bus as busmod
from libs.common.events import ServiceHeartbeat, service_event
from libs.devstack.harness import until

SEED_KEYS = {
    "status",
    "name",
    "servers_count",
    "exposure_mode",
    "total_tools",
    "cpu_percent",
    "memory_used_mb",
    "memory_total_mb",
    "memory_percent",
}


async def test_health_carries_the_registry_counts_and_the_hosts_cpu_and_memory(
    api: httpx.AsyncClient, publisher: busmod.Bus, clean: None
) -> None:
    stats = {"servers_count": 8, "total_tools": 49, "exposure_mode": "progressive"}
    beat = ServiceHeartbeat(
        "registry", "registry-seed-1", "1.0", datetime.now(UTC).isoformat(), 1.0, 5.0, stats
    )
    kind = service_event("registry", "heartbeat", ServiceHeartbeat)
    seen: list[httpx.Response] = []

    async def reported() -> bool:
        # beating as a replica does: the newest registry heartbeat is the one shown, and another
        # registry's (or one fetched by an app a previous test stopped) must not hide it
        await publisher.publish(kind.event(beat, source="registry"))
        seen.append(await api.get("/api/v1/health"))  # public, as the seed's: no credential
        body = seen[-1].json()
        return body["servers_count"] == 8 and body["memory_total_mb"] is not None

    # the answer that showed them is the one checked: another replica's heartbeat may follow
    await until(reported, timeout=15, interval=0.2, what="the registry's and audit's heartbeats")
    resp = seen[-1]
    assert resp.status_code == 200
    body = resp.json()
    assert SEED_KEYS <= set(body)
    assert (body["servers_count"], body["total_tools"], body["exposure_mode"]) == (
        8,
        49,
        "progressive",
    )
    assert 0 < body["memory_used_mb"] < body["memory_total_mb"]
    assert 0 < body["memory_percent"] < 100 and 0 <= body["cpu_percent"] <= 100
