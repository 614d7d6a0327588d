"""DNS rebinding: the MCP endpoints refuse a Host or Origin that does not name the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.gateway.settings import GatewaySettings
from tests.integration.gateway.conftest import Stack, bearer, modern_body, modern_headers
from tests.support import serving, settings_for
from tests.support.mcp_messages import initialize

INITIALIZE = initialize("rebinding")
EVIL = {"Host": "evil.example.com", "Origin": "http://evil.example.com"}


async def _list(http: httpx.AsyncClient, url: str, token: str, **headers: str) -> httpx.Response:
    """A stateless tools/list with extra headers."""
    return await http.post(
        f"{url}/mcp",
        json=modern_body("tools/list", {}),
        headers={**modern_headers("tools/list"), **bearer(token), **headers},
    )


async def test_a_rebinding_browser_s_request_is_refused_with_403_on_every_mcp_endpoint(
    stack: Stack,
) -> None:
    auth = bearer(stack.admin)
    async with httpx.AsyncClient(base_url=stack.url, headers={**auth, **EVIL}) as http:
        answers = [
            await http.post("/mcp", json=INITIALIZE),
            await http.post("/mcp/servers/anything", json=INITIALIZE),
            await http.get("/mcp", headers={"Mcp-Session-Id": "x"}),
            await http.delete("/mcp", headers={"Mcp-Session-Id": "x"}),
            await http.get("/sse"),
            await http.post("/messages?session_id=x", json=INITIALIZE),
        ]
    for resp in answers:
        assert resp.status_code == 403, (resp.request.url, resp.text)
        assert resp.json()["error"]["code"] == -32003


async def test_another_site_s_origin_is_refused_even_when_the_host_is_the_gateway_s(
    stack: Stack,
) -> None:
    async with httpx.AsyncClient() as http:
        resp = await _list(http, stack.url, stack.admin, Origin="https://evil.example.com")
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == -32003


async def test_clients_without_origin_and_pages_on_loopback_are_served(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        sdk = await _list(http, stack.url, stack.admin)
        same = await _list(http, stack.url, stack.admin, Origin=stack.url)
        local = await _list(http, stack.url, stack.admin, Origin="http://localhost:3000")
        named = await _list(http, stack.url, stack.admin, Host="localhost:8080")
    assert [r.status_code for r in (sdk, same, local, named)] == [200, 200, 200, 200]


@pytest.fixture
async def public_gateway(
    stack: Stack, pg_url: str, nats_url: str, namespace: str
) -> AsyncIterator[str]:
    """A replica published as https://mcp.example.com, reached as gateway.internal inside.

    The console of https://console.example.org is allowed."""
    from services.gateway.app import create_app

    env: dict[str, Any] = {
        "SWITCHBOARD_PUBLIC_URL": "https://mcp.example.com",
        "GATEWAY_ALLOWED_HOSTS": "gateway.internal",
        "GATEWAY_ALLOWED_ORIGINS": "https://console.example.org",
    }
    settings = settings_for(
        GatewaySettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace, **env
    )
    async with serving(create_app(settings)) as url:
        yield url


async def test_the_public_url_and_the_configured_hosts_and_origins_are_trusted(
    stack: Stack, public_gateway: str
) -> None:
    url, token = public_gateway, stack.admin
    public = {"Host": "mcp.example.com"}
    async with httpx.AsyncClient() as http:
        console = await _list(http, url, token, **public, Origin="https://mcp.example.com")
        allowed = await _list(http, url, token, **public, Origin="https://console.example.org")
        inside = await _list(http, url, token, Host="gateway.internal:8103")
        other_host = await _list(http, url, token, Host="mcp.example.org")
        other_page = await _list(http, url, token, **public, Origin="https://console.example.com")
    assert [console.status_code, allowed.status_code, inside.status_code] == [200, 200, 200]
    assert [other_host.status_code, other_page.status_code] == [403, 403]
