"""What a hosted server prints of its secrets is masked in stored logs, live streams and errors."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
import orjson
import pytest

from libs.common import rpc
from libs.common.bus import Bus, RpcError
from tests.integration.sandbox.conftest import EventTap, register_stdio, unique_name
from tests.integration.sandbox.test_hosted_servers import call
from tests.support.sse import stream_messages


async def test_secrets_a_server_prints_are_masked_in_its_logs_live_stream_and_status(
    sandbox: Any,
    api: httpx.AsyncClient,
    reg_api: httpx.AsyncClient,
    admin: dict,
    bus: Bus,
    events: EventTap,
) -> None:
    name, secret = unique_name("leaky"), f"ghp_{secrets.token_hex(16)}"
    await register_stdio(reg_api, admin, name, env={"API_TOKEN": secret, "REGION": "eu"})
    await call(bus, name, "echo", {"text": "up"})
    url = f"/api/v1/sandbox/servers/{name}/logs"
    live: list[dict] = []
    async with api.stream("GET", url, params={"follow": "true"}, headers=admin) as resp:
        await call(bus, name, "leak", {"name": "API_TOKEN"})
        async with asyncio.timeout(10):
            async for line in stream_messages(resp):
                live.append(line)
                if line["message"].startswith("debug:"):
                    break
    stored = (await api.get(url, headers=admin)).json()["items"]
    await call(bus, name, "leak", {"name": "API_TOKEN"})
    crash = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "crash"}}
    with pytest.raises(RpcError) as failed:  # its last words are the error's
        await bus.request(rpc.SANDBOX_CALL, {"server": name, "message": crash}, timeout=30)
    reply = [failed.value.message, failed.value.details]
    crashed = await events.wait_for(
        lambda e: (
            e["type"] == "sandbox.process.status"
            and e["data"]["server"] == name
            and e["data"]["state"] == "crashed"
        )
    )
    status = (await api.get(f"/api/v1/sandbox/servers/{name}/status", headers=admin)).text
    seen = orjson.dumps([live, stored, reply, crashed]).decode() + status
    assert "token=[masked]!" in seen and "debug: [masked]" in seen
    assert secret not in seen
    assert secret[4:20] not in seen
