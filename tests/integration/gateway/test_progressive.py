"""Progressive exposure over HTTP with the official SDK client: search, describe, call."""

from __future__ import annotations

import httpx
import pytest
from mcp.shared.exceptions import MCPError

from tests.integration.gateway.conftest import ADMIN, calculator, member, register
from tests.integration.gateway.test_mcp_http import sdk_client
from tests.integration.registry.conftest import run_upstream

META = {"search_tools", "describe_tool", "call_tool"}


def found(result) -> list[str]:
    """Tool names of a search_tools result."""
    return [t["name"] for t in result.structured_content["tools"]]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_progressive_mode_searches_describes_and_calls_only_permitted_tools(
    registry, stack, calls, mode
) -> None:
    auth = stack.auth
    async with (
        run_upstream(calculator("a")) as url_a,
        run_upstream(calculator("b")) as url_b,
        httpx.AsyncClient() as probe,
    ):
        await register(registry, "alpha", url_a)
        await register(registry, "beta", url_b)
        member = await auth.granted_member("alpha")
        alice, key = member.user, member.key
        await stack.wait_for_tool(probe, "alpha__add")
        await stack.wait_for_tool(probe, "beta__add")
        http, client = sdk_client(f"{stack.url}/mcp?exposure=progressive", key, mode)
        async with http, client:
            listed = await client.list_tools()
            hits = await client.call_tool("search_tools", {"query": "add two integers"})
            wide = await client.call_tool("search_tools", {"query": "add echo sleep", "limit": 50})
            described = await client.call_tool("describe_tool", {"name": "alpha__add"})
            called = await client.call_tool(
                "call_tool", {"name": "alpha__add", "arguments": {"a": 40, "b": 2}}
            )
            with pytest.raises(MCPError) as foreign:
                await client.call_tool("describe_tool", {"name": "beta__add"})
            with pytest.raises(MCPError) as foreign_call:
                await client.call_tool("call_tool", {"name": "beta__add", "arguments": {}})
    assert {t.name for t in listed.tools} == META
    assert {t.name: t for t in listed.tools}["search_tools"].input_schema["required"] == ["query"]
    assert found(hits)[0] == "alpha__add"
    assert found(wide) and all(name.startswith("alpha__") for name in found(wide))
    schema = described.structured_content["tool"]["inputSchema"]
    assert set(schema["properties"]) == {"a", "b"}
    assert called.structured_content == {"result": 42}
    assert foreign.value.error.code == -32602
    assert foreign_call.value.error.code == -32602
    event = await calls.wait_for(
        lambda e: e.data["server"] == "alpha" and e.data["principal_id"] == alice.id
    )
    assert event.data["tool"] == "add" and event.data["status"] == "ok"


async def test_the_exposure_setting_switches_tools_list_and_a_bad_value_is_invalid_params(
    registry, core_factory, stack
) -> None:
    async with run_upstream(calculator()) as url, httpx.AsyncClient() as http:
        await register(registry, "calc", url)
        core = await core_factory(GATEWAY_EXPOSURE_MODE="progressive")
        await core.wait_for_tool("calc__add")
        progressive = await core.call(ADMIN, "tools/list", {})
        direct = await core.call(ADMIN, "tools/list", {}, exposure="all")
        following = await core_factory()
        following.table.settings = {**following.table.settings, "exposure_mode": "progressive"}
        from_registry = await following.call(ADMIN, "tools/list", {})
        nobody = member(("team-a", "other", {"execute"}))
        empty = await core.call(
            nobody, "tools/call", {"name": "search_tools", "arguments": {"query": "add"}}
        )
        resp = await http.post(
            f"{stack.url}/mcp?exposure=sideways",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Authorization": f"Bearer {stack.admin}", "Mcp-Session-Id": "x"},
        )
    assert {t["name"] for t in progressive["tools"]} == META
    assert "calc__add" in {t["name"] for t in direct["tools"]}
    assert {t["name"] for t in from_registry["tools"]} == META
    assert empty["structuredContent"]["tools"] == []
    assert resp.json()["error"]["code"] == -32602
