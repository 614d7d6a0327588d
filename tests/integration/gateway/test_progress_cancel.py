"""Progress relayed to the client before the result, and cancellation reaching the upstream.

Cancellation reaches the replica that runs the call and, through it, the upstream."""

from __future__ import annotations

import asyncio

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.gateway.conftest import bearer, register
from tests.integration.gateway.upstreams import Hangs, rich
from tests.integration.registry.conftest import run_upstream
from tests.support.mcp_messages import initialize


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_progress_reaches_the_sdk_client_before_the_result(registry, stack, mode) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        seen.append((value, total, message))

    async with run_upstream(rich("calc")) as url, httpx.AsyncClient() as probe:
        await register(registry, f"prog-{mode}", url)
        await stack.wait_for_tool(probe, f"prog-{mode}__progress")
        http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
        client = Client(streamable_http_client(f"{stack.url}/mcp", http_client=http), mode=mode)
        async with http, client:
            result = await client.call_tool(
                f"prog-{mode}__progress", {"steps": 4}, progress_callback=on_progress
            )
            at_result = list(seen)
    assert result.content[0].text == "4 steps"
    assert at_result == [(i, 4, f"step {i}") for i in range(1, 5)]


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_a_cancel_sent_to_another_replica_cancels_the_upstream_call(
    registry, stack, replica_b, transport
) -> None:
    hangs = Hangs()
    init = initialize()
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": f"slow-{transport}__hang", "arguments": {"tag": transport}},
    }
    cancel = {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": 2, "reason": "user"},
    }
    async with (
        run_upstream(rich("slowpoke", hangs), transport=transport) as url,
        httpx.AsyncClient(headers=bearer(stack.admin), timeout=10) as http,
    ):
        await register(registry, f"slow-{transport}", url, transport=transport)
        await stack.wait_for_tool(http, f"slow-{transport}__hang")
        sid = (await http.post(f"{stack.url}/mcp", json=init)).headers["mcp-session-id"]
        headers = {"Mcp-Session-Id": sid}
        pending = asyncio.ensure_future(http.post(f"{stack.url}/mcp", json=call, headers=headers))
        await hangs.wait(hangs.started, transport)
        sent = await http.post(f"{replica_b}/mcp", json=cancel, headers=headers)
        await hangs.wait(hangs.cancelled, transport)
        answer = await pending
    assert sent.status_code == 202
    assert answer.json()["error"]["code"] == -32800
