"""`subscriptions/listen` (2026-07-28), official SDK client: list-changed on registry changes."""

from __future__ import annotations

import asyncio

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.subscriptions import PromptsListChanged, ToolsListChanged

from tests.integration.gateway.conftest import bearer, modern_body, modern_headers, register
from tests.integration.gateway.upstreams import rich
from tests.integration.registry.conftest import run_upstream


async def test_a_registry_change_reaches_a_listen_stream(registry, stack) -> None:
    http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
    client = Client(streamable_http_client(f"{stack.url}/mcp", http_client=http), mode="auto")
    async with http, client:
        async with client.listen(
            tools_list_changed=True, prompts_list_changed=True, resource_subscriptions=["x://y"]
        ) as sub:
            honored = sub.honored
            async with run_upstream(rich("late")) as url:
                await register(registry, "late", url)
                seen, names = set(), []
                async with asyncio.timeout(5):
                    async for event in sub:  # level triggers: refetch on each until it shows
                        seen.add(type(event))
                        names = [t.name for t in (await client.list_tools()).tools]
                        if "late__add" in names and len(seen) == 2:
                            break
    assert honored.tools_list_changed and honored.prompts_list_changed
    assert not honored.resources_list_changed and not honored.resource_subscriptions
    assert seen == {ToolsListChanged, PromptsListChanged}
    assert "late__add" in names


async def test_listen_without_an_event_stream_or_filter_is_a_json_rpc_error(stack) -> None:
    async with httpx.AsyncClient(headers=bearer(stack.admin)) as http:
        headers = modern_headers("subscriptions/listen")
        no_sse = await http.post(
            f"{stack.url}/mcp",
            json=modern_body("subscriptions/listen", {"notifications": {}}),
            headers={**headers, "Accept": "application/json"},
        )
        no_filter = await http.post(
            f"{stack.url}/mcp", json=modern_body("subscriptions/listen", {}), headers=headers
        )
    assert no_sse.json()["error"]["code"] == -32600
    assert no_filter.json()["error"]["code"] == -32602
