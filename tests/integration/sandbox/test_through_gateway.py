"""The whole path: an MCP client → gateway /mcp → rpc.sandbox.call → the sandboxed process."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from libs.devstack.harness import until
from services.gateway.app import create_app as create_gateway
from services.gateway.settings import GatewaySettings
from tests.integration.sandbox.conftest import register_stdio, unique_name
from tests.support import serving, settings_for

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "sandbox-test", "version": "1"},
}


@pytest.fixture(scope="module")
async def gateway(
    pg_url: str, nats_url: str, namespace: str, sandbox: Any, registry: str
) -> AsyncIterator[str]:
    """The real gateway."""
    settings = settings_for(GatewaySettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace)
    async with serving(create_gateway(settings)) as url:
        yield url


async def mcp(http: httpx.AsyncClient, url: str, admin: dict, method: str, params: dict) -> dict:
    """One stateless MCP request to /mcp."""
    headers = {
        **admin,
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
        "Accept": "application/json, text/event-stream",
    }
    if method == "tools/call":
        headers["Mcp-Name"] = params["name"]
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": META}}
    resp = await http.post(f"{url}/mcp", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def wait_for_tool(http: httpx.AsyncClient, url: str, admin: dict, name: str) -> None:
    """Poll tools/list until the gateway routes `name`."""

    async def routed() -> bool:
        listed = await mcp(http, url, admin, "tools/list", {})
        return name in {t["name"] for t in listed["result"]["tools"]}

    await until(routed, timeout=15, interval=0.1, what=f"the gateway to route {name}")


async def create_approved(api: httpx.AsyncClient, admin: dict, body: dict) -> dict:
    """A code tool created (POST /api/v1/sandbox/tools) and its approval granted."""
    created = await api.post("/api/v1/sandbox/tools", json=body, headers=admin)
    assert created.status_code == 201, created.text
    pending = await api.get(
        "/api/v1/sandbox/approvals/tools", params={"status": "pending"}, headers=admin
    )
    approval = next(a for a in pending.json()["items"] if a["subject"] == created.json()["id"])
    decided = await api.post(
        f"/api/v1/sandbox/approvals/tools/{approval['id']}/action",
        json={"action": "approve"},
        headers=admin,
    )
    assert decided.status_code == 200
    return created.json()


async def test_a_stdio_tool_is_called_through_the_gateway(
    gateway: str, reg_api: httpx.AsyncClient, admin: dict
) -> None:
    name = unique_name("gw")
    await register_stdio(reg_api, admin, name)
    async with httpx.AsyncClient(timeout=30) as http:
        await wait_for_tool(http, gateway, admin, f"{name}__echo")
        reply = await mcp(
            http,
            gateway,
            admin,
            "tools/call",
            {"name": f"{name}__echo", "arguments": {"text": "through"}},
        )
    assert reply["result"]["isError"] is False
    assert reply["result"]["content"][0]["text"] == "through"


async def test_an_approved_code_tool_is_called_through_the_gateway(
    gateway: str, api: httpx.AsyncClient, admin: dict
) -> None:
    tool = f"double-{secrets.token_hex(3)}"
    body = {
        "name": tool,
        "code": "async def main(n: int):\n    return n * 2",
        "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
    }
    await create_approved(api, admin, body)
    async with httpx.AsyncClient(timeout=30) as http:
        await wait_for_tool(http, gateway, admin, f"code__{tool}")
        reply = await mcp(
            http, gateway, admin, "tools/call", {"name": f"code__{tool}", "arguments": {"n": 21}}
        )
    assert reply["result"]["structuredContent"] == {"result": 42}


async def test_a_code_tool_put_under_a_chosen_server_is_served_there(
    gateway: str, api: httpx.AsyncClient, admin: dict, reg_api: httpx.AsyncClient
) -> None:
    server, tool = unique_name("maths"), f"double-{secrets.token_hex(3)}"
    body = {  # MCPBox: a tool created under a server of one's choosing
        "name": tool,
        "server": server,
        "code": "async def main(n: int):\n    return n * 2",
        "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
    }
    created = await create_approved(api, admin, body)
    assert created["server"] == server
    async with httpx.AsyncClient(timeout=30) as http:
        await wait_for_tool(http, gateway, admin, f"{server}__{tool}")
        reply = await mcp(
            http, gateway, admin, "tools/call", {"name": f"{server}__{tool}", "arguments": {"n": 4}}
        )
    assert reply["result"]["structuredContent"] == {"result": 8}
    registered = (await reg_api.get(f"/api/v1/servers/{server}", headers=admin)).json()
    assert registered["transport"] == "code"
    code_tools = (await reg_api.get("/api/v1/servers/code/tools", headers=admin)).json()
    assert tool not in {t["name"] for t in code_tools["items"]}
    stdio = unique_name()
    await register_stdio(reg_api, admin, stdio)
    clash = await api.post(
        "/api/v1/sandbox/tools", json=body | {"name": f"x-{tool}", "server": stdio}, headers=admin
    )
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "CONFLICT"


async def test_code_tools_travel_in_the_export_and_come_back_with_the_import(
    api: httpx.AsyncClient, admin: dict, reg_api: httpx.AsyncClient, gateway: str
) -> None:
    server, tool = unique_name("tools"), f"triple-{secrets.token_hex(3)}"
    code = "async def main(n: int):\n    return n * 3"
    body = {"name": tool, "server": server, "code": code, "description": "Triples"}
    await create_approved(api, admin, body)
    await until(
        lambda: reg_api.get(f"/api/v1/servers/{server}", headers=admin),
        what="the registry to create the code server",
        retry_on=(),
    )
    whole = (await reg_api.get("/api/v1/export/servers", headers=admin)).json()
    mine = [t for t in whole["code_tools"] if t["name"] == tool]
    assert mine == [
        {
            "name": tool,
            "server": server,
            "description": "Triples",
            "code": code,
            "input_schema": {"type": "object", "properties": {}},
        }
    ]
    one = (await reg_api.get(f"/api/v1/export/servers/{server}", headers=admin)).json()
    assert (one["servers"], one["code_tools"]) == ([], mine)
    deleted = await api.delete(f"/api/v1/sandbox/tools/{tool}", headers=admin)
    assert deleted.status_code == 204
    back = await reg_api.post(
        "/api/v1/export/import", json={"config": one, "on_conflict": "skip"}, headers=admin
    )
    assert back.status_code == 201, back.text
    assert back.json()["code_tools"] == {"created": [tool], "skipped": []}
    again = (await api.get(f"/api/v1/sandbox/tools/{tool}", headers=admin)).json()
    assert (again["server"], again["code"]) == (server, code)
    twice = await reg_api.post("/api/v1/export/import", json=one, headers=admin)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "CONFLICT"
    bad = dict(one, code_tools=[dict(mine[0], name="Bad Name")])
    invalid = await reg_api.post("/api/v1/export/import", json=bad, headers=admin)
    assert invalid.status_code == 422
