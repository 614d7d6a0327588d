"""Hot-path shortcuts keep their guarantees: cached credentials still revoke; replica header."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.gateway.conftest import bearer, modern_body, modern_headers
from tests.support.mcp_messages import initialize


async def _list_status(http: httpx.AsyncClient, url: str, key: str) -> int:
    """The HTTP status of one stateless tools/list with `key`."""
    resp = await http.post(
        f"{url}/mcp",
        json=modern_body("tools/list", {}),
        headers={**modern_headers("tools/list"), **bearer(key)},
    )
    return resp.status_code


async def test_a_revoked_api_key_stops_working_although_the_gateway_caches_it(stack) -> None:
    auth = stack.auth
    user = await auth.create_user()
    created = await auth.call("POST", "/api/v1/keys", user.token, json={"name": "c"}, expect=201)
    key = created["key"]
    async with httpx.AsyncClient(timeout=10) as http:
        assert await _list_status(http, stack.url, key) == 200
        assert await _list_status(http, stack.url, key) == 200  # served from the cache
        await auth.call("DELETE", f"/api/v1/keys/{created['id']}", user.token, expect=204)
        async with asyncio.timeout(5):
            while (status := await _list_status(http, stack.url, key)) == 200:
                await asyncio.sleep(0.02)
    assert status == 401


async def test_every_gateway_response_names_the_replica_that_answered(stack) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        ok = await http.post(
            f"{stack.url}/mcp",
            json=modern_body("tools/list", {}),
            headers={**modern_headers("tools/list"), **bearer(stack.admin)},
        )
        refused = await http.post(f"{stack.url}/mcp", json=modern_body("tools/list", {}))
    assert ok.headers["x-switchboard-instance"]
    assert refused.status_code == 401
    assert refused.headers["x-switchboard-instance"] == ok.headers["x-switchboard-instance"]


async def _open_streams(http: httpx.AsyncClient, url: str) -> float:
    """switchboard_gateway_sessions_open as /metrics reports it."""
    text = (await http.get(f"{url}/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("switchboard_gateway_sessions_open "))
    return float(line.split()[1])


async def test_the_sessions_gauge_counts_open_streams_not_handshakes(stack) -> None:
    init = initialize({}, version="2025-06-18")
    async with httpx.AsyncClient(timeout=10) as http:
        before = await _open_streams(http, stack.url)
        resp = await http.post(f"{stack.url}/mcp", json=init, headers=bearer(stack.admin))
        session = {**bearer(stack.admin), "Mcp-Session-Id": resp.headers["mcp-session-id"]}
        after_handshake = await _open_streams(http, stack.url)
        async with http.stream("GET", f"{stack.url}/mcp", headers=session) as stream:
            assert stream.status_code == 200
            async with asyncio.timeout(5):
                while (during := await _open_streams(http, stack.url)) != before + 1:
                    await asyncio.sleep(0.02)
        async with asyncio.timeout(5):
            while (closed := await _open_streams(http, stack.url)) != before:
                await asyncio.sleep(0.02)
    assert after_handshake == before  # a session id is a signed token: nothing is held
    assert during == before + 1
    assert closed == before


def _count(text: str, method: str, error: str) -> float:
    """mcp_server_operation_duration_seconds_count of one 2026-07-28 method and error type."""
    labels = {
        "mcp_method_name": method,
        "gen_ai_tool_name": "",
        "error_type": error,
        "mcp_protocol_version": "2026-07-28",
        "network_transport": "tcp",
    }
    samples = (
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mcp_server_operation_duration_seconds_count"
    )
    return next((s.value for s in samples if s.labels == labels), 0.0)


async def test_operation_durations_are_recorded_by_method_and_error_type(stack) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        before = (await http.get(f"{stack.url}/metrics")).text
        ok = await http.post(
            f"{stack.url}/mcp",
            json=modern_body("tools/list", {}),
            headers={**modern_headers("tools/list"), **bearer(stack.admin)},
        )
        odd = await http.post(
            f"{stack.url}/mcp",
            json=modern_body("no/such-method", {}),
            headers={**modern_headers("no/such-method"), **bearer(stack.admin)},
        )
        after = (await http.get(f"{stack.url}/metrics")).text
    assert ok.status_code == 200 and odd.json()["error"]["code"] == -32601
    assert _count(after, "tools/list", "") == _count(before, "tools/list", "") + 1
    assert _count(after, "other", "-32601") == _count(before, "other", "-32601") + 1
