"""Notifications an upstream sends before a call's result reach the client on the call's response.

Such notifications are log messages, in both generations; a call that sends none is answered
with plain JSON."""

from __future__ import annotations

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import LoggingMessageNotificationParams

from tests.integration.gateway.conftest import bearer, modern_body, modern_headers, register
from tests.support.mcp_messages import initialize
from tests.support.sse import messages as sse_messages
from tests.support.upstreams import run_upstream

# the upstream logs through the SDK's logging API, deprecated by 2026-07-28 (SEP-2577) but what
# servers of both generations use
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")


def chatty(name: str) -> MCPServer:
    """An upstream whose tool logs twice while it works, and one that says nothing."""
    server = MCPServer(name)

    @server.tool(description="Log, then answer.")
    async def work(ctx: Context) -> str:
        await ctx.info("started")
        await ctx.info("finished")
        return "worked"

    @server.tool(description="Answer at once.")
    def quiet() -> str:
        return "quiet"

    return server


async def test_a_legacy_client_hears_the_log_messages_of_its_call(registry, stack) -> None:
    heard: list[str] = []

    async def on_log(params: LoggingMessageNotificationParams) -> None:
        heard.append(str(params.data))

    # a handshake-era upstream: the gateway's session with it has a log level of its own
    async with run_upstream(chatty("talk1"), handshake=True) as url, httpx.AsyncClient() as probe:
        await register(registry, "talk1", url)
        await stack.wait_for_tool(probe, "talk1__work")
        http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
        client = Client(
            streamable_http_client(f"{stack.url}/mcp", http_client=http),
            mode="legacy",
            logging_callback=on_log,
        )
        async with http, client:
            result = await client.call_tool("talk1__work", {})
    assert result.content[0].text == "worked"
    assert heard == ["started", "finished"]


@pytest.mark.parametrize("level", ["info", None])
async def test_a_2026_07_28_client_gets_log_messages_when_its_request_asks(
    registry, stack, level
) -> None:
    async with (
        run_upstream(chatty("talk2")) as url,
        httpx.AsyncClient(headers=bearer(stack.admin)) as http,
    ):
        await register(registry, "talk2", url)
        await stack.wait_for_tool(http, "talk2__work")
        body = modern_body("tools/call", {"name": "talk2__work", "arguments": {}})
        if level:
            body["params"]["_meta"]["io.modelcontextprotocol/logLevel"] = level
        resp = await http.post(
            f"{stack.url}/mcp", json=body, headers=modern_headers("tools/call", "talk2__work")
        )
    if level is None:  # nothing precedes the result: plain JSON
        assert resp.headers["content-type"].startswith("application/json")
        assert resp.json()["result"]["content"][0]["text"] == "worked"
        return
    assert resp.headers["content-type"].startswith("text/event-stream")
    messages = sse_messages(resp.content)
    logged = [m["params"]["data"] for m in messages if m.get("method") == "notifications/message"]
    assert logged == ["started", "finished"]
    assert messages[-1]["result"]["content"][0]["text"] == "worked"


async def test_a_call_whose_upstream_sends_nothing_is_answered_with_json(registry, stack) -> None:
    init = initialize(None)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "talk3__quiet"}}
    accept = {"Accept": "application/json, text/event-stream"}
    async with (
        run_upstream(chatty("talk3")) as url,
        httpx.AsyncClient(headers={**bearer(stack.admin), **accept}) as http,
    ):
        await register(registry, "talk3", url)
        await stack.wait_for_tool(http, "talk3__quiet")
        session = (await http.post(f"{stack.url}/mcp", json=init)).headers["mcp-session-id"]
        resp = await http.post(f"{stack.url}/mcp", json=call, headers={"Mcp-Session-Id": session})
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["result"]["content"][0]["text"] == "quiet"
