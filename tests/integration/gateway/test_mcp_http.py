"""/mcp over HTTP with the official SDK clients of both generations, real auth and registry."""

from __future__ import annotations

import asyncio
import base64

import httpx
import httpx2
import orjson
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from services.gateway.jsonrpc import UNAVAILABLE
from services.gateway.settings import GatewaySettings
from tests.integration.gateway.conftest import (
    bearer,
    calculator,
    modern_body,
    modern_headers,
    register,
)
from tests.integration.registry.conftest import run_upstream
from tests.support import serving, settings_for
from tests.support.mcp_messages import initialize
from tests.support.sse import stream_messages


def sdk_client(url: str, token: str, mode: str) -> tuple[httpx2.AsyncClient, Client]:
    """An official SDK client authenticated with `token`."""
    http = httpx2.AsyncClient(headers=bearer(token), timeout=10)
    return http, Client(streamable_http_client(url, http_client=http), mode=mode)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_sdk_client_lists_and_calls_tools_in_both_generations(
    registry, stack, mode
) -> None:
    async with run_upstream(calculator()) as url, httpx.AsyncClient() as probe:
        await register(registry, "calc", url)
        await stack.wait_for_tool(probe, "calc__add")
        http, client = sdk_client(f"{stack.url}/mcp", stack.admin, mode)
        async with http, client:
            tools = await client.list_tools()
            result = await client.call_tool("calc__add", {"a": 20, "b": 22})
            with pytest.raises(MCPError) as exc:
                await client.call_tool("calc__nope", {})
    assert "calc__add" in [t.name for t in tools.tools]
    assert result.structured_content == {"result": 42}
    assert exc.value.error.code == -32602


async def test_an_api_key_of_team_a_neither_lists_nor_calls_team_bs_tools(registry, stack) -> None:
    auth = stack.auth
    async with (
        run_upstream(calculator("a")) as url_a,
        run_upstream(calculator("b")) as url_b,
        httpx.AsyncClient() as probe,
    ):
        await register(registry, "alpha", url_a)
        await register(registry, "beta", url_b)
        member = await auth.granted_member("alpha")
        key = member.key
        await stack.wait_for_tool(probe, "beta__add")
        listed = await stack.list_tools(probe, key)
        http, client = sdk_client(f"{stack.url}/mcp", key, "auto")
        async with http, client:
            ok = await client.call_tool("alpha__add", {"a": 1, "b": 1})
            with pytest.raises(MCPError) as exc:
                await client.call_tool("beta__add", {"a": 1, "b": 1})
    assert {t["name"].split("__")[0] for t in listed} == {"alpha"}
    assert ok.structured_content == {"result": 2}
    assert exc.value.error.code == -32602


async def test_a_request_without_credentials_is_401_with_a_json_rpc_error(stack) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{stack.url}/mcp",
            json=modern_body("tools/list", {}),
            headers=modern_headers("tools/list"),
        )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == -32001
    assert "resource_metadata" in resp.headers["www-authenticate"]


async def test_a_jwt_naming_another_algorithm_for_the_real_key_is_401_not_500(stack) -> None:
    header, claims, _ = stack.admin.split(".")
    forged_header = {**orjson.loads(base64.urlsafe_b64decode(header + "==")), "alg": "RS256"}
    encoded = base64.urlsafe_b64encode(orjson.dumps(forged_header)).rstrip(b"=").decode()
    forged = f"{encoded}.{claims}.{'A' * 342}"
    async with httpx.AsyncClient() as http:
        resp = await http.post(
            f"{stack.url}/mcp",
            json=modern_body("tools/list", {}),
            headers={**modern_headers("tools/list"), **bearer(forged)},
        )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == -32001


async def test_malformed_requests_get_the_right_json_rpc_errors(stack) -> None:
    url, auth = f"{stack.url}/mcp", bearer(stack.admin)
    ctype = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(headers=auth) as http:
        not_json = await http.post(url, content=b"{nope", headers=ctype)
        wrong_type = await http.post(url, content=b"{}", headers={"Content-Type": "text/plain"})
        batch = await http.post(url, json=[{"jsonrpc": "2.0", "id": 1, "method": "ping"}])
        no_session = await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        bad_session = await http.post(
            url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Mcp-Session-Id": "forged.0000"},
        )
        mismatch = await http.post(
            url, json=modern_body("tools/list", {}), headers=modern_headers("tools/call")
        )
        unknown = await http.post(
            url, json=modern_body("tools/frob", {}), headers=modern_headers("tools/frob")
        )
        huge = await http.post(url, content=b"[" + b"1," * 150_000 + b"1]", headers=ctype)
    assert (not_json.status_code, not_json.json()["error"]["code"]) == (400, -32700)
    assert (wrong_type.status_code, wrong_type.json()["error"]["code"]) == (415, -32600)
    assert (batch.status_code, batch.json()["error"]["code"]) == (400, -32600)
    assert (no_session.status_code, no_session.json()["error"]["code"]) == (400, -32600)
    assert (bad_session.status_code, bad_session.json()["error"]["code"]) == (404, -32004)
    assert (mismatch.status_code, mismatch.json()["error"]["code"]) == (400, -32020)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, -32601)
    assert huge.status_code == 413


async def test_a_legacy_session_ends_with_delete(stack) -> None:
    url = f"{stack.url}/mcp"
    init = initialize(version="2025-06-18")
    async with httpx.AsyncClient(headers=bearer(stack.admin)) as http:
        resp = await http.post(url, json=init)
        sid = resp.headers["mcp-session-id"]
        ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
        alive = await http.post(url, json=ping, headers={"Mcp-Session-Id": sid})
        ended = await http.delete(url, headers={"Mcp-Session-Id": sid})
        after = await http.post(url, json=ping, headers={"Mcp-Session-Id": sid})
    assert resp.json()["result"]["protocolVersion"] == "2025-06-18"
    assert alive.json()["result"] == {}
    assert ended.status_code == 204
    assert after.status_code == 404


async def test_a_2026_07_28_request_for_a_removed_method_is_404_method_not_found(stack) -> None:
    url = f"{stack.url}/mcp"
    removed = ["initialize", "ping", "logging/setLevel", "resources/subscribe"]
    async with httpx.AsyncClient(headers=bearer(stack.admin)) as http:
        answers = [
            await http.post(url, json=modern_body(m, {}, rid=7), headers=modern_headers(m))
            for m in removed
        ]
        legacy = await http.post(
            url,
            json=initialize(None),
        )
        sid = {"Mcp-Session-Id": legacy.headers.get("mcp-session-id", "")}
        ping = await http.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "ping"}, headers=sid)
    for method, resp in zip(removed, answers, strict=True):
        assert resp.status_code == 404, method
        assert (resp.json()["id"], resp.json()["error"]["code"]) == (7, -32601), method
    assert legacy.status_code == 200
    assert legacy.json()["result"]["protocolVersion"] == "2025-11-25"
    assert ping.json()["result"] == {}


async def test_server_discover_names_the_gateway_in_its_result_meta(stack) -> None:
    async with httpx.AsyncClient(headers=bearer(stack.admin)) as http:
        resp = await http.post(
            f"{stack.url}/mcp",
            json=modern_body("server/discover", {}),
            headers=modern_headers("server/discover"),
        )
    info = resp.json()["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]
    assert info["name"] == "switchboard-gateway" and info["version"]


async def test_a_registry_change_sends_list_changed_on_the_legacy_stream(registry, stack) -> None:
    url = f"{stack.url}/mcp"
    init = initialize()
    async with httpx.AsyncClient(headers=bearer(stack.admin), timeout=10) as http:
        sid = (await http.post(url, json=init)).headers["mcp-session-id"]
        headers = {"Mcp-Session-Id": sid, "Accept": "text/event-stream"}
        async with (
            http.stream("GET", url, headers=headers) as stream,
            run_upstream(calculator()) as up,
        ):
            assert stream.status_code == 200
            await register(registry, "fresh", up)
            async with asyncio.timeout(5):
                async for message in stream_messages(stream):
                    if message.get("method") == "notifications/tools/list_changed":
                        break


async def test_the_admin_call_tool_goes_through_the_gateway_path(registry, stack, calls) -> None:
    async with run_upstream(calculator()) as url, httpx.AsyncClient() as http:
        await register(registry, "calc", url)
        await stack.wait_for_tool(http, "calc__add")
        ok = await http.post(
            f"{stack.url}/api/v1/servers/calc/call-tool",
            json={"tool_name": "add", "arguments": {"a": 5, "b": 6}},
            headers=bearer(stack.admin),
        )
        missing = await http.post(
            f"{stack.url}/api/v1/servers/calc/call-tool",
            json={"tool_name": "nope"},
            headers=bearer(stack.admin),
        )
        invalid = await http.post(
            f"{stack.url}/api/v1/servers/calc/call-tool",
            json={"arguments": {}},
            headers=bearer(stack.admin),
        )
        tested = await http.post(
            f"{stack.url}/api/v1/servers/calc/test", headers=bearer(stack.admin)
        )
        anonymous = await http.post(f"{stack.url}/api/v1/servers/calc/test")
    assert ok.status_code == 200
    assert ok.json()["result"]["structuredContent"] == {"result": 11}
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "NOT_FOUND")
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (422, "VALIDATION_ERROR")
    assert tested.json()["ok"] is True and "add" in tested.json()["tools"]
    assert anonymous.status_code == 401
    event = await calls.wait_for(lambda e: e.data["endpoint"] == "admin call-tool")
    assert event.data["tool"] == "add"


async def test_a_credential_auth_cannot_check_now_is_503_unavailable_not_401(
    pg_url: str, nats_url: str, namespace: str
) -> None:
    from services.gateway.app import create_app

    alone = f"{namespace}alone"  # a namespace where no auth service answers
    settings = settings_for(GatewaySettings, pg_url=pg_url, nats_url=nats_url, namespace=alone)
    async with serving(create_app(settings)) as url, httpx.AsyncClient() as http:
        resp = await http.post(
            f"{url}/mcp",
            json=modern_body("tools/list", {}),
            headers={**modern_headers("tools/list"), "X-API-Key": "sbk_" + "a" * 40},
        )
    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == UNAVAILABLE
    assert "www-authenticate" not in resp.headers  # nothing is wrong with the credential
