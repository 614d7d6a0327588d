"""MCP semconv metrics through the running gateway: operations, errors and sessions, by label."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from mcp.server.mcpserver import MCPServer
from prometheus_client import REGISTRY

from services.registry import servers
from tests.integration.gateway.conftest import bearer, modern_body, modern_headers, register
from tests.integration.registry.conftest import run_upstream
from tests.support.mcp_messages import initialize
from tests.support.sse import stream_events

SERVER_OP = "mcp_server_operation_duration_seconds_count"
CLIENT_OP = "mcp_client_operation_duration_seconds_count"


def flaky(name: str) -> MCPServer:
    """An upstream with a tool that answers and one that fails (an isError result)."""
    server = MCPServer(name)

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Always fails.")
    def broken(city: str) -> str:
        raise ValueError(f"no station in {city}")

    return server


def count(name: str, **labels: str) -> float:
    """A histogram's `_count` for one label set (0 when it has no such series)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def server_op(method: str, tool: str = "", error: str = "", version: str = "2026-07-28") -> dict:
    """The labels of one mcp_server_operation_duration_seconds series."""
    return {
        "mcp_method_name": method,
        "gen_ai_tool_name": tool,
        "error_type": error,
        "mcp_protocol_version": version,
        "network_transport": "tcp",
    }


async def call(http: httpx.AsyncClient, url: str, token: str, name: str, args: dict) -> Any:
    """One stateless 2026-07-28 tools/call; its JSON-RPC answer."""
    resp = await http.post(
        f"{url}/mcp",
        json=modern_body("tools/call", {"name": name, "arguments": args}),
        headers={**modern_headers("tools/call", name), **bearer(token)},
    )
    return resp.json()


async def test_tool_calls_are_labelled_by_tool_and_error_type(registry, stack) -> None:
    ok, tool_error = (
        server_op("tools/call", "mx__add"),
        server_op("tools/call", "mx__broken", "tool_error"),
    )
    unknown = server_op("tools/call", "other", "-32602")
    before = [count(SERVER_OP, **labels) for labels in (ok, tool_error, unknown)]
    async with run_upstream(flaky("mx")) as url, httpx.AsyncClient(timeout=10) as http:
        await register(registry, "mx", url)
        await stack.wait_for_tool(http, "mx__add")
        client_before = count(
            CLIENT_OP, server="mx", **server_op("tools/call", "add", "", "2026-07-28")
        )
        added = await call(http, stack.url, stack.admin, "mx__add", {"a": 1, "b": 2})
        failed = await call(http, stack.url, stack.admin, "mx__broken", {"city": "x"})
        refused = await call(http, stack.url, stack.admin, "mx__nope-123", {})
        client_after = count(
            CLIENT_OP, server="mx", **server_op("tools/call", "add", "", "2026-07-28")
        )
    assert "result" in added and failed["result"]["isError"] is True
    assert refused["error"]["code"] == -32602
    after = [count(SERVER_OP, **labels) for labels in (ok, tool_error, unknown)]
    assert after == [b + 1 for b in before]
    assert client_after == client_before + 1  # the upstream's own name, as the gateway called it
    assert count(CLIENT_OP, server="mx", **server_op("tools/call", "broken", "tool_error")) >= 1


async def test_a_json_rpc_error_is_its_code_and_junk_methods_are_other(stack) -> None:
    labels = server_op("other", "", "-32601")
    before = count(SERVER_OP, **labels)
    async with httpx.AsyncClient(timeout=10) as http:
        for i in range(3):
            resp = await http.post(
                f"{stack.url}/mcp",
                json=modern_body(f"junk/{i}", {}),
                headers={**modern_headers(f"junk/{i}"), **bearer(stack.admin)},
            )
            assert resp.json()["error"]["code"] == -32601
        text = (await http.get(f"{stack.url}/metrics")).text
    assert count(SERVER_OP, **labels) == before + 3
    assert "junk/" not in text


async def test_a_2025_session_ending_is_timed_with_its_protocol(stack) -> None:
    labels = {"mcp_protocol_version": "2025-06-18", "network_transport": "tcp", "error_type": ""}
    session_before = count("mcp_server_session_duration_seconds_count", **labels)
    init_labels = server_op("initialize", "", "", "2025-06-18")
    listed_labels = server_op("tools/list", "", "", "2025-06-18")
    init_before, listed_before = count(SERVER_OP, **init_labels), count(SERVER_OP, **listed_labels)
    async with httpx.AsyncClient(timeout=10, headers=bearer(stack.admin)) as http:
        resp = await http.post(f"{stack.url}/mcp", json=initialize(version="2025-06-18"))
        session = {"Mcp-Session-Id": resp.headers["mcp-session-id"]}
        listed = await http.post(
            f"{stack.url}/mcp",
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            headers=session,  # no MCP-Protocol-Version header: the session's version
        )
        ended = await http.delete(f"{stack.url}/mcp", headers=session)
    assert listed.status_code == 200 and ended.status_code == 204
    assert count(SERVER_OP, **init_labels) == init_before + 1
    assert count(SERVER_OP, **listed_labels) == listed_before + 1
    assert count("mcp_server_session_duration_seconds_count", **labels) == session_before + 1


async def test_a_legacy_sse_request_and_its_stream_are_recorded(stack) -> None:
    ping = server_op("ping", "", "", "2024-11-05")
    refused = server_op("tools/call", "other", "-32602", "2024-11-05")
    labels = {"mcp_protocol_version": "2024-11-05", "network_transport": "tcp", "error_type": ""}
    before = (count(SERVER_OP, **ping), count(SERVER_OP, **refused))
    session_before = count("mcp_server_session_duration_seconds_count", **labels)
    async with httpx.AsyncClient(timeout=10, headers=bearer(stack.admin)) as http:
        async with http.stream("GET", f"{stack.url}/sse") as stream:
            lines = stream_events(stream)
            endpoint = (await anext(lines)).data.decode()
            await http.post(stack.url + endpoint, json=initialize(version="2024-11-05"))
            await anext(lines)
            for rid, body in enumerate(
                [
                    {"method": "ping"},
                    {"method": "tools/call", "params": {"name": "x__nope", "arguments": {}}},
                ],
                start=2,
            ):
                await http.post(stack.url + endpoint, json={"jsonrpc": "2.0", "id": rid, **body})
                await anext(lines)  # its answer: the operation is recorded by then
    assert (count(SERVER_OP, **ping), count(SERVER_OP, **refused)) == (before[0] + 1, before[1] + 1)
    async with asyncio.timeout(5):  # the stream's end reaches the gateway after the client's
        while count("mcp_server_session_duration_seconds_count", **labels) == session_before:
            await asyncio.sleep(0.02)


async def test_an_upstream_session_is_timed_from_its_handshake_to_its_end(registry, stack) -> None:
    labels = {"server": "mxs", "mcp_protocol_version": "2025-11-25", "network_transport": "tcp"}
    async with run_upstream(flaky("mxs"), handshake=True) as url:
        async with httpx.AsyncClient(timeout=10) as http:
            server = await register(registry, "mxs", url)
            await stack.wait_for_tool(http, "mxs__add")
            before = count("mcp_client_session_duration_seconds_count", **labels, error_type="")
            added = await call(http, stack.url, stack.admin, "mxs__add", {"a": 1, "b": 2})
        assert "result" in added
        initialized = count(
            CLIENT_OP, server="mxs", **server_op("initialize", "", "", "2025-11-25")
        )
        assert initialized >= 1
        assert (
            count(CLIENT_OP, server="mxs", **server_op("tools/call", "add", "", "2025-11-25")) >= 1
        )
        async with registry.pool.acquire() as conn, conn.transaction():
            await servers.delete(registry, conn, server, "test")
        async with asyncio.timeout(5):
            while (
                count("mcp_client_session_duration_seconds_count", **labels, error_type="")
                == before
            ):
                await asyncio.sleep(0.02)
