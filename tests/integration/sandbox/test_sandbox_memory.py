"""Sandbox memory: log buffers bounded in bytes, and cgroup limits reported as they are."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from libs.common.bus import Bus
from tests.integration.sandbox.conftest import (
    LOG_BYTES,
    LOG_LINE_BYTES,
    register_stdio,
    unique_name,
)
from tests.integration.sandbox.test_hosted_servers import call
from tests.support.sse import stream_messages


async def spew_and_wait(
    api: httpx.AsyncClient, admin: dict, bus: Bus, name: str, **args: Any
) -> None:
    """Have the server write to stderr, and wait until its last line reached the log."""
    url = f"/api/v1/sandbox/servers/{name}/logs"
    async with api.stream("GET", url, params={"follow": "true"}, headers=admin) as resp:
        assert resp.status_code == 200
        await call(bus, name, "spew", args)
        async with asyncio.timeout(20):
            async for line in stream_messages(resp):
                if line["message"] == "spew-done":
                    return


async def test_a_servers_log_buffer_is_bounded_in_bytes_and_long_lines_are_cut(
    sandbox: Any, api: httpx.AsyncClient, reg_api: httpx.AsyncClient, admin: dict, bus: Bus
) -> None:
    name = unique_name("spew")
    await register_stdio(reg_api, admin, name)
    await call(bus, name, "echo", {"text": "up"})
    await spew_and_wait(api, admin, bus, name, lines=40, size=256 * 1024)  # 10 MiB
    await spew_and_wait(api, admin, bus, name, lines=0, size=20 * 1024 * 1024)  # no newline
    logs = await api.get(f"/api/v1/sandbox/servers/{name}/logs?limit=2000", headers=admin)
    messages = [line["message"] for line in logs.json()["items"]]
    kept = sum(len(m.encode()) for m in messages)
    assert kept <= LOG_BYTES, kept
    assert max(len(m.encode()) for m in messages) <= LOG_LINE_BYTES + 64
    assert messages[-1] == "spew-done"
    assert any(m.endswith("bytes cut]") for m in messages)
    buffer = sandbox.state.runtime.manager.log_buffer(name)
    assert buffer.bytes <= LOG_BYTES


async def test_the_status_says_whether_sandboxes_get_cgroup_limits(
    sandbox: Any, api: httpx.AsyncClient, admin: dict
) -> None:
    status = (await api.get("/api/v1/sandbox/status", headers=admin)).json()
    cgroups = status["cgroups"]
    support = sandbox.state.runtime.cgroups
    assert cgroups["memory"] is support.memory and cgroups["pids"] is support.pids
    enforces = status["isolation"]["enforces"]
    assert (enforces["cgroup_memory"], enforces["cgroup_pids"]) == (support.memory, support.pids)
    if not support.memory:  # this host delegates none: the status says why
        assert cgroups["reason"]
