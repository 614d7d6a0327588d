"""A Node stdio server from npm (@modelcontextprotocol/server-everything), sandboxed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from libs.common import rpc
from libs.common.bus import Bus
from tests.integration.sandbox.conftest import register_stdio, unique_name


async def test_server_everything_runs_sandboxed_and_answers_tools(
    sandbox: Any, server_everything: Path, reg_api: httpx.AsyncClient, admin: dict, bus: Bus
) -> None:
    name = unique_name("everything")
    await register_stdio(
        reg_api, admin, name, command="node", args=[str(server_everything), "stdio"]
    )
    found = await bus.request(rpc.SANDBOX_DISCOVER, {"server": name}, timeout=30)
    assert "echo" in {t["name"] for t in found["tools"]}
    message = {
        "jsonrpc": "2.0",
        "id": "n1",
        "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "from node"}},
    }
    reply = await bus.request(rpc.SANDBOX_CALL, {"server": name, "message": message}, timeout=30)
    text = reply["message"]["result"]["content"][0]["text"]
    assert "from node" in text
    stopped = await sandbox.state.runtime.manager.stop(name)
    assert stopped == [name]
