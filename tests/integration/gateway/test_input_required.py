"""Server-to-client requests as 2026-07-28 `input_required` results, relayed both ways."""

from __future__ import annotations

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import ElicitResult

from tests.integration.gateway.conftest import bearer, modern_body, modern_headers, register
from tests.integration.gateway.upstreams import rich
from tests.integration.registry.conftest import run_upstream


async def test_an_elicitation_round_trip_reaches_the_sdk_client(registry, stack) -> None:
    asked: list[str] = []

    async def on_elicit(context, params):  # noqa: ANN001, ANN202
        asked.append(params.message)
        return ElicitResult(action="accept", content={"name": "Ada"})

    async with run_upstream(rich("desk")) as url, httpx.AsyncClient() as probe:
        await register(registry, "desk", url)
        await stack.wait_for_tool(probe, "desk__ask")
        http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
        client = Client(
            streamable_http_client(f"{stack.url}/mcp", http_client=http),
            mode="auto",
            elicitation_callback=on_elicit,
        )
        async with http, client:
            result = await client.call_tool("desk__ask", {})
    assert asked == ["Your name?"]
    assert result.content[0].text == "hello Ada (asked)"


async def test_the_input_required_result_and_the_retry_pass_through_intact(registry, stack) -> None:
    async with (
        run_upstream(rich("desk")) as url,
        httpx.AsyncClient(headers=bearer(stack.admin)) as http,
    ):
        await register(registry, "desk", url)
        await stack.wait_for_tool(http, "desk__ask")
        headers = modern_headers("tools/call", "desk__ask")
        first = await http.post(
            f"{stack.url}/mcp",
            json=modern_body("tools/call", {"name": "desk__ask", "arguments": {}}),
            headers=headers,
        )
        state = first.json()["result"]["requestState"]
        retry = {
            "name": "desk__ask",
            "arguments": {},
            "inputResponses": {"name": {"action": "accept", "content": {"name": "Bo"}}},
            "requestState": state,
        }
        second = await http.post(
            f"{stack.url}/mcp", json=modern_body("tools/call", retry, 2), headers=headers
        )
    body = first.json()["result"]
    assert body["resultType"] == "input_required"
    assert body["inputRequests"]["name"]["method"] == "elicitation/create"
    assert second.json()["result"]["content"][0]["text"] == "hello Bo (asked)"
    assert second.json()["result"]["resultType"] == "complete"


@pytest.mark.parametrize("transport", ["legacy", "sse"])
async def test_a_legacy_client_is_asked_over_its_session_stream(registry, stack, transport) -> None:
    asked: list[str] = []

    async def on_elicit(context, params):  # noqa: ANN001, ANN202
        asked.append(params.message)
        return ElicitResult(action="accept", content={"name": "Cy"})

    async with run_upstream(rich("desk")) as url, httpx.AsyncClient() as probe:
        await register(registry, "desk", url)
        await stack.wait_for_tool(probe, "desk__ask")
        http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
        if transport == "sse":
            connection = sse_client(f"{stack.url}/sse", headers=bearer(stack.admin), timeout=10)
        else:
            connection = streamable_http_client(f"{stack.url}/mcp", http_client=http)
        client = Client(connection, mode="legacy", elicitation_callback=on_elicit)
        async with http, client:
            result = await client.call_tool("desk__ask", {})
    assert asked == ["Your name?"]
    assert result.content[0].text == "hello Cy (asked)"
