"""The gateway through nginx with the official SDK clients of both generations.

The upstream is a TypeScript SDK server."""

from __future__ import annotations

import httpx
import pytest

from tests.acceptance.npm_peers import everything_over_http, run_ts_client
from tests.acceptance.platform_boot import Platform
from tests.acceptance.rest import Admin, expect, unique
from tests.acceptance.sdk import call_text, sdk_client
from tests.acceptance.wire import register_http, wait_routed

MODES = {"auto": "2026-07-28", "legacy": "2025-"}  # SDK connect mode → the revision it must get


@pytest.mark.parametrize("mode", list(MODES))
async def test_the_python_sdk_client_lists_and_calls_an_upstream_tool_in_both_generations(
    platform: Platform, admin: Admin, weather: str, mode: str
) -> None:
    capability = f"gateway: the Python SDK client (mode {mode!r})"
    async with sdk_client(platform.url, admin.key, mode) as client:
        version = client.protocol_version
        tools = [t.name for t in (await client.list_tools()).tools]
        text = await call_text(client, f"{weather}__temperature", {"city": "Oslo"})
    assert version.startswith(MODES[mode]), f"{capability}: negotiated {version}"
    assert f"{weather}__temperature" in tools, f"{capability}: tools/list shows {tools}"
    assert text == "21C in Oslo", f"{capability}: the call answered {text!r}"


async def test_the_typescript_sdk_client_lists_and_calls_an_upstream_tool(
    platform: Platform, admin: Admin, weather: str
) -> None:
    capability = "gateway: the TypeScript SDK client"
    tool = f"{weather}__forecast"
    report = await run_ts_client(
        f"{platform.url}/mcp", admin.key, tool, {"city": "Oslo", "days": 2}
    )
    assert report["sessionId"], f"{capability}: opens a session-based (2025) connection"
    assert tool in report["tools"], f"{capability}: tools/list shows {report['tools']}"
    result = report["result"]
    assert not result.get("isError"), f"{capability}: the call failed: {result}"
    assert result["content"][0]["text"] == "sunny for 2 days in Oslo", f"{capability}: {result}"


async def test_a_typescript_sdk_upstream_is_listed_and_called_through_mcp(
    platform: Platform, api: httpx.AsyncClient, admin: Admin
) -> None:
    capability = "gateway: a TypeScript SDK upstream (server-everything over Streamable HTTP)"
    name = unique("tsup")
    async with everything_over_http() as url:
        await register_http(api, admin, name, url)
        try:
            await wait_routed(api, admin.key, f"{name}__echo")
            async with sdk_client(platform.url, admin.key) as client:
                texts = [
                    await call_text(client, f"{name}__echo", {"message": f"ping {n}"})
                    for n in range(3)
                ]
        finally:
            resp = await api.delete(f"/api/v1/servers/{name}", headers=admin.headers)
            expect(resp, 204, "registry: delete a server")
    assert texts == [f"Echo: ping {n}" for n in range(3)], f"{capability}: {texts}"
