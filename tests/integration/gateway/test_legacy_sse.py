"""The deprecated HTTP+SSE transport toward clients: `GET /sse` + `POST /messages`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

from libs.common.sse import Event
from tests.integration.gateway.conftest import bearer, register
from tests.integration.gateway.upstreams import rich
from tests.integration.registry.conftest import run_upstream
from tests.support.mcp_messages import initialize
from tests.support.sse import stream_events


def sse_sdk_client(url: str, token: str) -> Client:
    """The official SDK client on the HTTP+SSE transport."""
    return Client(sse_client(f"{url}/sse", headers=bearer(token), timeout=10), mode="legacy")


async def test_the_sdk_sse_client_lists_calls_and_sees_progress(registry, stack) -> None:
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with run_upstream(rich("calc")) as url, httpx.AsyncClient() as probe:
        await register(registry, "ssecalc", url)
        await stack.wait_for_tool(probe, "ssecalc__add")
        async with sse_sdk_client(stack.url, stack.admin) as client:
            tools = await client.list_tools()
            added = await client.call_tool("ssecalc__add", {"a": 40, "b": 2})
            stepped = await client.call_tool(
                "ssecalc__progress", {"steps": 3}, progress_callback=on_progress
            )
            with pytest.raises(MCPError) as exc:
                await client.call_tool("ssecalc__nope", {})
    assert "ssecalc__add" in [t.name for t in tools.tools]
    assert added.structured_content == {"result": 42}
    assert stepped.content[0].text == "3 steps"
    assert progress == [1, 2, 3]
    assert exc.value.error.code == -32602


async def test_sse_needs_a_credential_and_a_live_session_of_the_same_principal(stack) -> None:
    other = await stack.auth.create_user()
    async with httpx.AsyncClient(timeout=10) as http:
        anonymous = await http.get(f"{stack.url}/sse")
        async with http.stream("GET", f"{stack.url}/sse", headers=bearer(stack.admin)) as stream:
            endpoint = await _endpoint(stream)
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            foreign = await http.post(stack.url + endpoint, json=ping, headers=bearer(other.token))
            forged = await http.post(
                f"{stack.url}/messages?session_id=abc.def", json=ping, headers=bearer(stack.admin)
            )
            garbage = await http.post(
                stack.url + endpoint,
                content=b"{nope",
                headers={**bearer(stack.admin), "Content-Type": "application/json"},
            )
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == -32001
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == -32004
    assert forged.status_code == 404
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == -32700


async def test_a_post_on_another_replica_is_answered_on_the_stream(stack, replica_b) -> None:
    async with httpx.AsyncClient(timeout=10, headers=bearer(stack.admin)) as http:
        async with http.stream("GET", f"{stack.url}/sse") as stream:
            lines = stream_events(stream)
            endpoint = await _endpoint(stream, lines)
            accepted = await http.post(
                replica_b + endpoint, json=initialize(version="2025-06-18", request_id="x-1")
            )
            reply = await _reply(lines)
            unknown = {"jsonrpc": "2.0", "id": "x-2", "method": "nope/nope"}
            await http.post(replica_b + endpoint, json=unknown)
            failed = await _reply(lines)
    assert accepted.status_code == 202
    assert reply["id"] == "x-1" and reply["result"]["protocolVersion"] == "2025-06-18"
    assert failed["id"] == "x-2" and failed["error"]["code"] == -32601


async def _endpoint(stream: httpx.Response, lines: AsyncIterator[Event] | None = None) -> str:
    """The POST URL from the stream's first event."""
    assert stream.status_code == 200
    async with asyncio.timeout(5):
        async for event in lines or stream_events(stream):
            if event.event == "endpoint":
                return event.data.decode().strip()
    raise AssertionError("no endpoint event")


async def _next_message(lines: AsyncIterator[Event]) -> dict:
    """The next `message` event's JSON."""
    async with asyncio.timeout(5):
        async for event in lines:
            if event.data:
                return orjson.loads(event.data)
    raise AssertionError("the stream ended")


async def _reply(lines: AsyncIterator[Event]) -> dict:
    """The next answer on the stream, past any notification.

    Another test's registry change may announce itself at any time."""
    while "id" not in (message := await _next_message(lines)):
        pass
    return message


async def test_a_registry_change_announces_every_list_on_the_sse_stream(registry, stack) -> None:
    wanted = {f"notifications/{kind}/list_changed" for kind in ("tools", "prompts", "resources")}
    seen: set[str] = set()
    async with httpx.AsyncClient(timeout=10, headers=bearer(stack.admin)) as http:
        async with http.stream("GET", f"{stack.url}/sse") as stream:
            lines = stream_events(stream)
            endpoint = await _endpoint(stream, lines)
            await http.post(
                stack.url + endpoint, json=initialize(version="2025-06-18", request_id="f-1")
            )
            await _reply(lines)
            async with run_upstream(rich("fresh-sse")) as url:
                await register(registry, "fresh-sse", url)
                async with asyncio.timeout(5):
                    while seen != wanted:
                        seen.add((await _next_message(lines))["method"])
    assert seen == wanted


async def test_the_team_sse_view_lists_and_calls_only_that_teams_tools(registry, stack) -> None:
    auth = stack.auth
    async with (
        run_upstream(rich("a")) as url_a,
        run_upstream(rich("b")) as url_b,
        httpx.AsyncClient(timeout=10) as http,
    ):
        await register(registry, "tsse-a", url_a)
        await register(registry, "tsse-b", url_b)
        member = await auth.granted_member("tsse-a")
        team, key = member.team, member.key
        await stack.wait_for_tool(http, "tsse-b__add")
        async with sse_sdk_client(f"{stack.url}/mcp/{team['name']}", key) as client:
            tools = await client.list_tools()
            added = await client.call_tool("tsse-a__add", {"a": 1, "b": 2})
            with pytest.raises(MCPError) as hidden:
                await client.call_tool("tsse-b__add", {"a": 1, "b": 2})
        foreign = await http.get(f"{stack.url}/mcp/not-my-team/sse", headers=bearer(key))
        async with http.stream(
            "GET", f"{stack.url}/mcp/{team['name']}/sse", headers=bearer(key)
        ) as stream:
            endpoint = await _endpoint(stream)
    assert {t.name.split("__")[0] for t in tools.tools} == {"tsse-a"}
    assert added.structured_content == {"result": 3}
    assert hidden.value.error.code == -32602
    # another team (of another org or not the caller's) is not there for it
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == -32004
    assert endpoint.startswith(f"/mcp/{team['name']}/messages?session_id=")


async def test_the_per_server_sse_view_has_unprefixed_tools_and_prompts(
    registry, stack, calls
) -> None:
    async with run_upstream(rich("one")) as url, httpx.AsyncClient(timeout=10) as http:
        await register(registry, "ssone", url, path="ss-one")
        await stack.wait_for_tool(http, "ssone__add")
        async with sse_sdk_client(f"{stack.url}/mcp/servers/ss-one", stack.admin) as client:
            tools = await client.list_tools()
            added = await client.call_tool("add", {"a": 20, "b": 1})
            prompts = await client.list_prompts()
        missing = await http.get(
            f"{stack.url}/mcp/servers/nowhere/sse", headers=bearer(stack.admin)
        )
        async with http.stream(
            "GET",
            f"{stack.url}/mcp/servers/ss-one/sse?exposure=progressive",
            headers=bearer(stack.admin),
        ) as stream:
            endpoint = await _endpoint(stream)
    assert "add" in {t.name for t in tools.tools}
    assert all("__" not in t.name for t in tools.tools)
    assert added.structured_content == {"result": 21}
    assert prompts.prompts
    assert missing.status_code == 404 and missing.json()["error"]["code"] == -32004
    assert endpoint.startswith("/mcp/servers/ss-one/messages?session_id=")
    assert endpoint.endswith("&exposure=progressive")
    event = await calls.wait_for(lambda e: e.data["server"] == "ssone" and e.data["tool"] == "add")
    assert event.data["endpoint"] == "/mcp/servers/{path}/sse"


async def test_no_list_changed_reaches_a_stream_before_its_session_is_initialized(
    registry, stack
) -> None:
    """A client lists after `initialize` anyway: a change announced before it is noise.

    It would arrive where the client waits for its initialize result."""
    async with httpx.AsyncClient(timeout=10, headers=bearer(stack.admin)) as http:
        async with http.stream("GET", f"{stack.url}/sse") as stream:
            lines = stream_events(stream)
            endpoint = await _endpoint(stream, lines)
            async with run_upstream(rich("early-sse")) as url:
                await register(registry, "early-sse", url)
                await stack.wait_for_tool(http, "early-sse__add")  # announced on this replica
                await http.post(
                    stack.url + endpoint, json=initialize(version="2025-06-18", request_id="i-1")
                )
                first = await _next_message(lines)
                await register(registry, "early-sse-2", url)
                after = await _next_message(lines)
    assert first["id"] == "i-1" and "protocolVersion" in first["result"]
    assert after["method"].endswith("/list_changed")
