"""Helpers of the gateway's end-to-end tests: admin login, API keys, servers, MCP over nginx."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from libs.devstack.harness import until
from tests.e2e.conftest import STACK_ENV

MODERN = "2026-07-28"


async def admin_token(api: httpx.AsyncClient) -> str:
    """The bootstrapped platform admin's JWT (STACK_ENV credentials)."""
    resp = await api.post(
        "/api/v1/auth/login",
        json={
            "username": STACK_ENV["SWITCHBOARD_ADMIN_USER"],
            "password": STACK_ENV["SWITCHBOARD_ADMIN_PASSWORD"],
        },
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


async def api_key(api: httpx.AsyncClient, token: str) -> str:
    """An API key (sbk_...) of the admin."""
    resp = await api.post(
        "/api/v1/keys", json={"name": f"e2e-{secrets.token_hex(3)}"}, headers=bearer(token)
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["key"]


async def register(
    api: httpx.AsyncClient, token: str, name: str, url: str, transport: str = "streamable-http"
) -> None:
    """Register an upstream through nginx (the registry discovers its tools).

    Streamable HTTP unless `transport` says `sse`."""
    body = {"name": name, "transport": transport, "url": url}
    resp = await api.post("/api/v1/servers", json=body, headers=bearer(token))
    assert resp.status_code == 201, resp.text


def bearer(token: str) -> dict[str, str]:
    """The Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def modern(method: str, params: dict[str, Any], rid: int = 1) -> dict[str, Any]:
    """A 2026-07-28 request with its per-request envelope."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "1"},
    }
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": {**params, "_meta": meta}}


def modern_headers(method: str, token: str, name: str | None = None) -> dict[str, str]:
    """Routing headers of a 2026-07-28 request plus the credential."""
    headers = {
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
        "Accept": "application/json, text/event-stream",
        **bearer(token),
    }
    if name is not None:
        headers["Mcp-Name"] = name
    return headers


async def list_tools(http: httpx.AsyncClient, base: str, token: str) -> httpx.Response:
    """One stateless tools/list against `base` (nginx or one replica)."""
    return await http.post(
        f"{base}/mcp", json=modern("tools/list", {}), headers=modern_headers("tools/list", token)
    )


async def call_tool(
    http: httpx.AsyncClient,
    base: str,
    token: str,
    name: str,
    arguments: dict[str, Any],
    extra_headers: dict[str, str] | None = None,
) -> httpx.Response:
    """One stateless tools/call."""
    return await http.post(
        f"{base}/mcp",
        json=modern("tools/call", {"name": name, "arguments": arguments}),
        headers={**modern_headers("tools/call", token, name), **(extra_headers or {})},
    )


async def wait_listed(http: httpx.AsyncClient, base: str, token: str, tool: str) -> None:
    """Poll tools/list on `base` until `tool` is listed (10 s at most)."""

    async def listed() -> bool:
        resp = await list_tools(http, base, token)
        return resp.status_code == 200 and tool in tool_names(resp)

    await until(listed, timeout=10, what=f"{tool} in tools/list")


def tool_names(resp: httpx.Response) -> list[str]:
    """Tool names of a tools/list response."""
    return [t["name"] for t in resp.json().get("result", {}).get("tools", [])]
