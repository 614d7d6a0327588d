"""Supervision with a manager of its own: per-user processes, caps, and health pings."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from libs.common.errors import Unavailable
from services.sandbox import isolation
from services.sandbox.layout import ensure_dir, plan
from services.sandbox.processes import ProcessManager
from services.sandbox.server_spec import ServerSpec
from services.sandbox.settings import SandboxSettings
from tests.integration.sandbox.conftest import ECHO_SERVER, FIXTURES, WORK_ROOT
from tests.integration.sandbox.test_no_orphans import processes_of


def echo_spec(per_user: bool = False) -> ServerSpec:
    """The echo fixture as a spec."""
    return ServerSpec(
        name=f"sup-{secrets.token_hex(3)}",
        command="python3",
        args=(ECHO_SERVER,),
        per_user=per_user,
    )


@pytest.fixture
async def manager() -> AsyncIterator[tuple[ProcessManager, list[dict[str, Any]]]]:
    """A manager allowing one process per server, pinging every second."""
    settings = SandboxSettings(
        work_root=str(Path(WORK_ROOT) / secrets.token_hex(4)),
        ro_paths=(str(FIXTURES),),
        max_per_server=1,
        health_interval_s=1.0,
        backoff_base_s=0.2,
    )
    layout = plan(settings, "supervision")
    ensure_dir(layout.work_root / "servers")
    seen: list[dict[str, Any]] = []

    async def record(snap: dict[str, Any]) -> None:
        seen.append(snap)

    tier, _ = isolation.probe_tier(settings)
    mgr = ProcessManager(settings, layout, tier, on_status=record)
    await mgr.start()
    yield mgr, seen
    await mgr.close()
    layout.remove_stage()
    shutil.rmtree(settings.work_root, ignore_errors=True)


def tools_call(tool: str) -> dict[str, Any]:
    """A tools/call message."""
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool}}


async def test_per_user_servers_get_one_process_per_user_within_the_cap(manager: Any) -> None:
    mgr, _ = manager
    spec = echo_spec(per_user=True)
    first = await mgr.call(spec, tools_call("whoami"), tenant="alice")
    assert first["result"]["isError"] is False
    again = await mgr.call(spec, tools_call("whoami"), tenant="alice")
    assert again["result"]["content"] == first["result"]["content"]
    with pytest.raises(Unavailable):
        await mgr.call(spec, tools_call("whoami"), tenant="bob")
    assert [p["key"] for p in mgr.status(spec.name)] == [f"{spec.name}@alice", f"{spec.name}@bob"]


async def test_a_process_that_stops_answering_pings_is_restarted(manager: Any) -> None:
    mgr, seen = manager
    spec = echo_spec()
    proc = await mgr.ensure(spec)
    uid = isolation.host_uid(mgr.settings, proc.key)
    if uid is None:
        pytest.fail("this test needs root, to find the sandbox's processes by their uid")
    for pid in processes_of(uid):
        os.kill(pid, signal.SIGSTOP)  # alive but silent
    async with asyncio.timeout(20):
        while not any(
            s["server"] == spec.name and s["state"] == "running" and s["restarts"] == 1
            for s in seen
        ):
            await asyncio.sleep(0.1)
    reply = await mgr.call(spec, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    assert "tools" in reply["result"]
    log = [line["message"] for line in mgr.log_buffer(spec.name).lines]
    assert "health ping failed; restarting" in log
