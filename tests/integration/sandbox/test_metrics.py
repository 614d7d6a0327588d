"""The sandbox's /metrics: starts, processes by state, spawn latency, restarts, kills, egress.

The service is driven as its other tests drive it, then scraped."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from libs.common.bus import Bus, RpcError
from libs.devstack.harness import until
from services.sandbox.execution import RunRequest, run_code
from tests.integration.sandbox.conftest import (
    ALLOWED_LOOPBACK,
    EventTap,
    register_stdio,
    unique_name,
)
from tests.integration.sandbox.test_hosted_servers import call, structured
from tests.integration.sandbox.test_network_approvals import fetch, ok_server
from tests.support.metrics import scrape, value

STARTS = "switchboard_sandbox_process_starts_total"
PROCESSES = "switchboard_sandbox_processes"
SPAWN_COUNT = "switchboard_sandbox_spawn_duration_seconds_count"
RESTARTS = "switchboard_sandbox_process_restarts_total"
KILLS = "switchboard_sandbox_limit_kills_total"
EGRESS = "switchboard_sandbox_egress_requests_total"


async def test_a_start_shows_in_starts_the_state_gauge_and_spawn_latency(
    api: httpx.AsyncClient, reg_api: httpx.AsyncClient, admin: dict, bus: Bus
) -> None:
    name = unique_name("metrics")
    before = await scrape(api)
    await register_stdio(reg_api, admin, name)  # its discovery may start it already
    assert structured(await call(bus, name, "echo", {"text": "up"})) == "up"
    after = await scrape(api)
    assert value(after, STARTS, outcome="ok") - value(before, STARTS, outcome="ok") >= 1
    assert value(after, SPAWN_COUNT) - value(before, SPAWN_COUNT) >= 1
    assert value(after, PROCESSES, state="running") >= 1
    for state in ("starting", "backoff", "crashed", "failed", "stopping", "stopped"):
        assert (PROCESSES, frozenset({("state", state)})) in after  # every state, 0 when none


async def test_a_crash_counts_a_restart(
    api: httpx.AsyncClient, reg_api: httpx.AsyncClient, admin: dict, bus: Bus, events: EventTap
) -> None:
    name = unique_name("metrics")
    await register_stdio(reg_api, admin, name)
    await call(bus, name, "echo", {"text": "up"})
    before = await scrape(api)
    with pytest.raises(RpcError):
        await call(bus, name, "crash", {"code": 7})
    await events.wait_for(
        lambda e: e["data"].get("server") == name and e["data"].get("state") == "backoff"
    )

    async def counted() -> bool:
        return value(await scrape(api), RESTARTS) - value(before, RESTARTS) >= 1

    await until(counted, what="the restart counted")


async def test_a_code_run_past_its_timeout_counts_a_timeout_kill(
    sandbox: Any, api: httpx.AsyncClient
) -> None:
    before = await scrape(api)
    code = "def main():\n    while True:\n        pass\n"
    result = await run_code(sandbox.state.runtime, RunRequest(code=code, args={}, timeout_s=1))
    assert result["limit"] == "timeout"
    after = await scrape(api)
    assert value(after, KILLS, limit="timeout") - value(before, KILLS, limit="timeout") == 1


async def test_egress_counts_denied_and_allowed_connections(
    sandbox: Any, api: httpx.AsyncClient, reg_api: httpx.AsyncClient, admin: dict
) -> None:
    server, url = await ok_server()
    name = f"netm-{os.urandom(3).hex()}"
    await register_stdio(reg_api, admin, name, enabled=False)
    try:
        before = await scrape(api)
        assert await fetch(sandbox, name, url) == 403
        mid = await scrape(api)
        denied = {"decision": "denied", "reason": "not_allowlisted"}
        assert value(mid, EGRESS, **denied) - value(before, EGRESS, **denied) == 1
        path = f"/api/v1/sandbox/servers/{name}/allowed-hosts"
        added = await api.post(path, json={"hosts": [ALLOWED_LOOPBACK]}, headers=admin)
        assert added.status_code == 201, added.text
        assert await fetch(sandbox, name, url) == "ok"
        after = await scrape(api)
        allowed = {"decision": "allowed", "reason": "allowed"}
        assert value(after, EGRESS, **allowed) - value(mid, EGRESS, **allowed) == 1
    finally:
        server.close()
