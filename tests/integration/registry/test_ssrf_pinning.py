"""Connect-time SSRF: addresses resolved once, checked, and the connection pinned to them."""

from __future__ import annotations

import socket
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.transport_security import TransportSecuritySettings

from services.registry import pinning, ssrf
from tests.support import serving
from tests.support.upstreams import make_upstream, run_upstream

NAMED = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["upstream.invalid:*"],
    allowed_origins=["http://upstream.invalid:*"],
)


async def test_a_pinned_client_reaches_the_vetted_address_with_the_original_host() -> None:
    # `.invalid` never resolves: the request can only succeed through the pin, and the upstream
    # (which accepts only that Host header) proves the name still travels in the Host header
    app = make_upstream().streamable_http_app(transport_security=NAMED)
    async with serving(app) as base:
        port = base.rsplit(":", 1)[1]
        factory = pinning.client_factory({"upstream.invalid": ("127.0.0.1",)})
        http = factory(timeout=httpx2.Timeout(5))
        url = f"http://upstream.invalid:{port}/mcp"
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            tools = await client.list_tools()
    assert sorted(t.name for t in tools.tools) == ["forecast", "temperature"]


async def test_a_pinned_client_refuses_hosts_that_were_not_vetted() -> None:
    async with run_upstream(make_upstream()) as url:
        factory = pinning.client_factory({"upstream.invalid": ("127.0.0.1",)})
        async with factory(timeout=httpx2.Timeout(5)) as http:
            with pytest.raises(httpx2.ConnectError):
                await http.get(url)


async def test_resolution_checks_every_address_and_returns_them_for_pinning() -> None:
    name = socket.gethostname()
    with pytest.raises(ssrf.SsrfRefused):
        await ssrf.resolve_checked(f"http://{name}:80/", [])
    host, addrs = await ssrf.resolve_checked(
        "http://localhost:80/", ssrf.parse_networks(["127.0.0.0/8", "::1/128"])
    )
    assert host == "localhost" and addrs and all(a in ("127.0.0.1", "::1") for a in addrs)


async def test_a_name_resolving_to_a_refused_address_is_refused_at_connect_time(
    api: Any,
) -> None:
    # a host name passes the static check; what it resolves to (loopback here) is refused
    resp = await api.put("/api/v1/settings/ssrf_allowlist", json={"value": []})
    assert resp.status_code == 200, resp.text
    async with run_upstream(make_upstream()) as url:
        port = url.rsplit(":", 1)[1].split("/")[0]
        body = {
            "name": "rebind",
            "transport": "streamable-http",
            "url": f"http://{socket.gethostname()}:{port}/mcp",
        }
        resp = await api.post("/api/v1/servers", json=body)
        assert resp.status_code == 201, resp.text
        assert resp.json()["status"] == "unhealthy"
        assert resp.json()["tool_count"] == 0
        assert "SSRF" in resp.json()["error"]
        # the allowlist lets the same address through
        resp = await api.put("/api/v1/settings/ssrf_allowlist", json={"value": ["127.0.0.0/8"]})
        assert resp.status_code == 200
        local = {"url": f"http://localhost:{port}/mcp"}
        resp = await api.patch("/api/v1/servers/rebind", json=local)
        assert resp.status_code == 200, resp.text
        resp = await api.post("/api/v1/servers/rebind/refresh")
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "healthy"
