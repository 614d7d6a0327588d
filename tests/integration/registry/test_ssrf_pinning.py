"""Connect-time SSRF: addresses resolved once, checked, and the connection pinned to them."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from libs.common.outbound import Guard
from libs.common.ssrf import SsrfRefused
from tests.support.upstreams import make_upstream, run_upstream


async def test_resolution_checks_every_address_of_a_name() -> None:
    name = socket.gethostname()
    with pytest.raises(SsrfRefused):
        await Guard([]).check_url(f"http://{name}:80/")
    host, addrs = await Guard(["127.0.0.0/8", "::1/128"]).check_url("http://localhost:80/")
    assert host == "localhost" and addrs and all(a in ("127.0.0.1", "::1") for a in addrs)


@pytest.mark.parametrize(
    "url",
    [
        "http://2852039166/mcp",
        "http://0xa9fea9fe/mcp",
        "http://0251.0376.0251.0376/mcp",
        "http://[::ffff:169.254.169.254]/mcp",
        "http://[64:ff9b::a9fe:a9fe]/mcp",
        "http://0x7f000001:9/mcp",
        "http://0177.0.0.1:9/mcp",
        "http://127.1:9/mcp",
    ],
)
async def test_numeric_forms_of_refused_addresses_are_refused_at_registration(
    api: Any, url: str
) -> None:
    resp = await api.put("/api/v1/settings/ssrf_allowlist", json={"value": []})
    assert resp.status_code == 200, resp.text
    try:
        resp = await api.post(
            "/api/v1/servers", json={"name": "numeric", "transport": "sse", "url": url}
        )
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
        assert "url" in resp.json()["error"]["details"]["fields"]
    finally:
        await api.put("/api/v1/settings/ssrf_allowlist", json={"value": ["127.0.0.0/8"]})


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
