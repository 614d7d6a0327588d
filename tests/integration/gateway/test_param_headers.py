"""`Mcp-Param-*` headers and encoded `Mcp-Name` (SEP-2243) through the gateway.

The upstream is a Python SDK server that checks them too."""

from __future__ import annotations

import base64
from typing import Annotated

import httpx
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from tests.integration.gateway.conftest import Stack, bearer, modern_body, modern_headers, register
from tests.integration.registry.conftest import run_upstream
from tests.support.mcp_messages import initialize


def regional(name: str) -> MCPServer:
    """An upstream whose tool mirrors its `region` argument into `Mcp-Param-Region`.

    It also has a prompt whose name is not plain ASCII."""
    server = MCPServer(name)

    @server.tool(description="Say where the call was routed.")
    def route(region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})]) -> str:
        return f"routed to {region}"

    @server.prompt(name="grüße", description="A greeting.")
    def greeting() -> str:
        return "Grüß Gott"

    return server


def b64(value: str) -> str:
    """The SEP-2243 base64 form of a header value."""
    return f"=?base64?{base64.b64encode(value.encode()).decode()}?="


async def _call(
    http: httpx.AsyncClient, stack: Stack, tool: str, region: str, header: str | None
) -> httpx.Response:
    """A 2026-07-28 tools/call of `tool` with `region`, the header as given (None: left out)."""
    headers = modern_headers("tools/call", tool)
    if header is not None:
        headers["Mcp-Param-Region"] = header
    body = modern_body("tools/call", {"name": tool, "arguments": {"region": region}})
    return await http.post(f"{stack.url}/mcp", json=body, headers=headers)


async def test_mcp_param_headers_are_decoded_matched_and_sent_on_upstream(registry, stack) -> None:
    async with (
        run_upstream(regional("geo")) as url,
        httpx.AsyncClient(headers=bearer(stack.admin)) as http,
    ):
        await register(registry, "geo", url)
        await stack.wait_for_tool(http, "geo__route")
        plain = await _call(http, stack, "geo__route", "eu-west", "eu-west")
        encoded = await _call(http, stack, "geo__route", "Zürich", b64("Zürich"))
        literal = await _call(http, stack, "geo__route", "=?base64?SGVsbG8=", "=?base64?SGVsbG8=")
    assert plain.status_code == 200, plain.text
    assert plain.json()["result"]["content"][0]["text"] == "routed to eu-west"
    assert encoded.status_code == 200, encoded.text  # the upstream got its base64 form
    assert encoded.json()["result"]["content"][0]["text"] == "routed to Zürich"
    assert literal.status_code == 200, literal.text


async def test_a_missing_malformed_or_mismatching_mcp_param_header_is_refused(
    registry, stack
) -> None:
    async with (
        run_upstream(regional("geo2")) as url,
        httpx.AsyncClient(headers=bearer(stack.admin)) as http,
    ):
        await register(registry, "geo2", url)
        await stack.wait_for_tool(http, "geo2__route")
        refused = [
            await _call(http, stack, "geo2__route", "Hello", None),
            await _call(http, stack, "geo2__route", "Hello", "Goodbye"),
            await _call(http, stack, "geo2__route", "Hello", "=?base64?SGVsbG8?="),
            await _call(http, stack, "geo2__route", "Hello", "=?base64?SGVs!!!bG8=?="),
        ]
    for resp in refused:
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"]["code"] == -32020


async def test_a_legacy_client_s_call_carries_the_mcp_param_header_upstream(
    registry, stack
) -> None:
    init = initialize(None)
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "geo3__route", "arguments": {"region": "ap-south"}},
    }
    async with (
        run_upstream(regional("geo3")) as url,
        httpx.AsyncClient(headers=bearer(stack.admin)) as http,
    ):
        await register(registry, "geo3", url)
        await stack.wait_for_tool(http, "geo3__route")
        session = (await http.post(f"{stack.url}/mcp", json=init)).headers["mcp-session-id"]
        resp = await http.post(f"{stack.url}/mcp", json=call, headers={"Mcp-Session-Id": session})
    assert resp.json()["result"]["content"][0]["text"] == "routed to ap-south"


async def test_a_name_that_is_not_plain_ascii_reaches_the_upstream_as_base64_mcp_name(
    registry, stack
) -> None:
    async with (
        run_upstream(regional("geo4")) as url,
        httpx.AsyncClient(headers=bearer(stack.admin)) as http,
    ):
        await register(registry, "geo4", url)
        await stack.wait_for_tool(http, "geo4__route")
        body = modern_body("prompts/get", {"name": "grüße"})
        headers = {**modern_headers("prompts/get"), "Mcp-Name": b64("grüße")}
        resp = await http.post(f"{stack.url}/mcp/servers/geo4", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["messages"][0]["content"]["text"] == "Grüß Gott"
