"""Resource subscriptions: upstream updates reach legacy sessions and listen streams."""

from __future__ import annotations

import asyncio

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import ResourceUpdated

from services.gateway.clients.sessions import broadcast_ended
from services.gateway.features.resource_watch import ResourceWatch
from tests.integration.gateway.conftest import ADMIN, bearer, first_update, register
from tests.integration.gateway.upstreams import rich
from tests.integration.registry.conftest import run_upstream


def rpc(rid: int, method: str, params: dict) -> dict:
    """A JSON-RPC request."""
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


async def test_a_legacy_subscription_taken_by_another_replica_delivers_updates(
    registry, stack, replica_b
) -> None:
    init = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    uri = "switchboard://watch1/watch1://items/7"
    async with (
        run_upstream(rich("watch1")) as url,
        httpx.AsyncClient(headers=bearer(stack.admin), timeout=10) as http,
    ):
        await register(registry, "watch1", url)
        await stack.wait_for_tool(http, "watch1__touch")
        mcp = f"{stack.url}/mcp"
        sid = (await http.post(mcp, json=rpc(1, "initialize", init))).headers["mcp-session-id"]
        headers = {"Mcp-Session-Id": sid}
        async with http.stream(
            "GET", mcp, headers={**headers, "Accept": "text/event-stream"}
        ) as stream:
            subscribed = await http.post(
                f"{replica_b}/mcp",
                json=rpc(2, "resources/subscribe", {"uri": uri}),
                headers=headers,
            )
            touch = {"name": "watch1__touch", "arguments": {"item": "7"}}
            await http.post(mcp, json=rpc(3, "tools/call", touch), headers=headers)
            seen = await first_update(stream)
            gone = await http.post(
                mcp, json=rpc(4, "resources/unsubscribe", {"uri": uri}), headers=headers
            )
    assert subscribed.json()["result"] == {}
    assert seen["params"]["uri"] == uri
    assert gone.json()["result"] == {}


async def test_a_listen_stream_gets_updates_of_its_resource_subscriptions(registry, stack) -> None:
    uri = "switchboard://watch2/watch2://items/9"
    async with run_upstream(rich("watch2")) as url, httpx.AsyncClient() as probe:
        await register(registry, "watch2", url)
        await stack.wait_for_tool(probe, "watch2__touch")
        http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
        client = Client(streamable_http_client(f"{stack.url}/mcp", http_client=http), mode="auto")
        async with http, client:
            async with client.listen(resource_subscriptions=[uri, "file:///nope"]) as sub:
                honored = sub.honored.resource_subscriptions
                await client.call_tool("watch2__touch", {"item": "9"})
                async with asyncio.timeout(5):
                    event = await anext(aiter(sub))
    assert honored == [uri]
    assert event == ResourceUpdated(uri=uri)


async def test_an_ended_session_drops_its_subscriptions(registry, core_factory) -> None:
    async with run_upstream(rich("watch3")) as url:
        await register(registry, "watch3", url)
        core = await core_factory()
        watch = ResourceWatch(core.pool, registry.bus)
        await watch.start()
        got: list[str] = []

        async def deliver(uri: str) -> None:
            got.append(uri)

        try:
            await watch.add(core.table.servers["watch3"], "watch3://items/1", "sess-1", deliver)
            touch = {"name": "watch3__touch", "arguments": {"item": "1"}}
            await core.call(ADMIN, "tools/call", touch)
            async with asyncio.timeout(5):
                while not got:
                    await asyncio.sleep(0.02)
            await broadcast_ended(registry.bus, "sess-1")
            async with asyncio.timeout(5):
                while watch.callbacks or watch.streams:
                    await asyncio.sleep(0.02)
        finally:
            await watch.stop()
    assert got == ["watch3://items/1"]
