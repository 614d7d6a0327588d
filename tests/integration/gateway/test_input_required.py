"""Server-to-client requests: `input_required` (2026-07-28) and JSON-RPC requests, relayed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import (
    CreateMessageRequest,
    CreateMessageRequestParams,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
    ListRootsRequest,
    SamplingMessage,
    TextContent,
)

from tests.integration.gateway.conftest import bearer, modern_body, modern_headers, register
from tests.integration.gateway.upstreams import legacy_only, rich
from tests.integration.registry.conftest import LOCAL, run_upstream
from tests.support import serving
from tests.support.mcp_messages import initialize
from tests.support.sse import stream_messages


async def test_an_elicitation_round_trip_reaches_the_sdk_client(registry, stack) -> None:
    asked: list[str] = []

    async def on_elicit(context, params):  # noqa: ANN001, ANN202
        asked.append(params.message)
        return ElicitResult(action="accept", content={"name": "Ada"})

    async with run_upstream(rich("desk1")) as url, httpx.AsyncClient() as probe:
        await register(registry, "desk1", url)
        await stack.wait_for_tool(probe, "desk1__ask")
        http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
        client = Client(
            streamable_http_client(f"{stack.url}/mcp", http_client=http),
            mode="auto",
            elicitation_callback=on_elicit,
        )
        async with http, client:
            result = await client.call_tool("desk1__ask", {})
    assert asked == ["Your name?"]
    assert result.content[0].text == "hello Ada (asked)"


async def test_the_input_required_result_and_the_retry_pass_through_intact(registry, stack) -> None:
    async with (
        run_upstream(rich("desk2")) as url,
        httpx.AsyncClient(headers=bearer(stack.admin)) as http,
    ):
        await register(registry, "desk2", url)
        await stack.wait_for_tool(http, "desk2__ask")
        headers = modern_headers("tools/call", "desk2__ask")
        first = await http.post(
            f"{stack.url}/mcp",
            json=modern_body("tools/call", {"name": "desk2__ask", "arguments": {}}),
            headers=headers,
        )
        state = first.json()["result"]["requestState"]
        retry = {
            "name": "desk2__ask",
            "arguments": {},
            "inputResponses": {"name": {"action": "accept", "content": {"name": "Bo"}}},
            "requestState": state,
        }
        second = await http.post(
            f"{stack.url}/mcp", json=modern_body("tools/call", retry, 2), headers=headers
        )
    body = first.json()["result"]
    assert body["resultType"] == "input_required"
    assert body["inputRequests"]["name"]["method"] == "elicitation/create"
    assert second.json()["result"]["content"][0]["text"] == "hello Bo (asked)"
    assert second.json()["result"]["resultType"] == "complete"


@pytest.mark.parametrize("transport", ["legacy", "sse"])
async def test_a_legacy_client_is_asked_over_its_session_stream(registry, stack, transport) -> None:
    asked: list[str] = []

    async def on_elicit(context, params):  # noqa: ANN001, ANN202
        asked.append(params.message)
        return ElicitResult(action="accept", content={"name": "Cy"})

    async with run_upstream(rich("desk")) as url, httpx.AsyncClient() as probe:
        await register(registry, f"desk-{transport}", url)
        await stack.wait_for_tool(probe, f"desk-{transport}__ask")
        http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
        if transport == "sse":
            connection = sse_client(f"{stack.url}/sse", headers=bearer(stack.admin), timeout=10)
        else:
            connection = streamable_http_client(f"{stack.url}/mcp", http_client=http)
        client = Client(connection, mode="legacy", elicitation_callback=on_elicit)
        async with http, client:
            result = await client.call_tool(f"desk-{transport}__ask", {})
    assert asked == ["Your name?"]
    assert result.content[0].text == "hello Cy (asked)"


def sdk_client(stack, transport: str, **callbacks) -> tuple[httpx2.AsyncClient, Client]:
    """The official SDK client over the gateway: legacy session, HTTP+SSE or 2026-07-28."""
    http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
    if transport == "sse":
        connection = sse_client(f"{stack.url}/sse", headers=bearer(stack.admin), timeout=10)
    else:
        connection = streamable_http_client(f"{stack.url}/mcp", http_client=http)
    mode = "auto" if transport == "modern" else "legacy"
    return http, Client(connection, mode=mode, **callbacks)


@pytest.mark.parametrize(
    ("upstream", "client"), [("legacy", "legacy"), ("legacy", "sse"), ("sse", "legacy")]
)
async def test_a_session_upstreams_elicitation_reaches_a_legacy_client(
    registry, stack, upstream, client
) -> None:
    async def on_elicit(context, params):  # noqa: ANN001, ANN202
        return ElicitResult(action="accept", content={"name": "Di"})

    name = f"old-{upstream}-{client}"
    server = rich(name)
    if upstream == "sse":
        serve = run_upstream(server, transport="sse")
    else:
        serve = serving(legacy_only(server.streamable_http_app(transport_security=LOCAL)))
    async with serve as base, httpx.AsyncClient() as probe:
        url = base if upstream == "sse" else f"{base}/mcp"
        await register(
            registry, name, url, transport="sse" if upstream == "sse" else "streamable-http"
        )
        await stack.wait_for_tool(probe, f"{name}__elicit")
        http, sdk = sdk_client(stack, client, elicitation_callback=on_elicit)
        async with http, sdk:
            result = await sdk.call_tool(f"{name}__elicit", {})
    assert result.content[0].text == "hi Di"


class _RetryElsewhere(httpx2.AsyncBaseTransport):
    """Sends every request carrying a `requestState` (a retry) to another replica."""

    def __init__(self, other: str) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.other = httpx2.URL(other)
        self.moved = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if b"requestState" in request.content:
            request.url = request.url.copy_with(host=self.other.host, port=self.other.port)
            self.moved += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def registered_session_upstream(
    registry, server: MCPServer, transport: str
) -> AsyncIterator[None]:
    """A 2025-era SDK upstream, registered: Streamable HTTP (refusing 2026-07-28) or HTTP+SSE."""
    if transport == "sse":
        async with run_upstream(server, transport="sse") as url:
            await register(registry, server.name, url, transport="sse")
            yield
    else:
        app = legacy_only(server.streamable_http_app(transport_security=LOCAL))
        async with serving(app) as base:
            await register(registry, server.name, f"{base}/mcp")
            yield


@pytest.mark.parametrize("upstream", ["http", "sse"])
async def test_a_session_upstreams_elicitation_reaches_a_current_client(
    registry, stack, upstream
) -> None:
    await _elicit_through_a_parked_call(registry, stack, upstream, None)


@pytest.mark.parametrize("upstream", ["http", "sse"])
async def test_the_retry_of_a_parked_call_may_land_on_another_replica(
    registry, stack, replica_b, upstream
) -> None:
    await _elicit_through_a_parked_call(registry, stack, upstream, replica_b)


async def _elicit_through_a_parked_call(registry, stack, upstream: str, other: str | None) -> None:
    """A 2025-era upstream's elicitation during a 2026-07-28 SDK client's call (mode auto)."""
    asked: list[str] = []

    async def on_elicit(context, params):  # noqa: ANN001, ANN202
        asked.append(params.message)
        return ElicitResult(action="accept", content={"name": "Flo"})

    name = f"old-modern-{upstream}-{'other' if other else 'same'}"
    async with (
        registered_session_upstream(registry, rich(name), upstream),
        httpx.AsyncClient() as probe,
    ):
        await stack.wait_for_tool(probe, f"{name}__elicit")
        # with `other`, the retry lands on a second replica, routed over NATS to the first
        transport = _RetryElsewhere(other) if other else None
        http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10, transport=transport)
        connection = streamable_http_client(f"{stack.url}/mcp", http_client=http)
        sdk = Client(connection, mode="auto", elicitation_callback=on_elicit)
        async with http, sdk:
            result = await sdk.call_tool(f"{name}__elicit", {})
            added = await sdk.call_tool(f"{name}__add", {"a": 1, "b": 1})
    assert asked == ["Your name, please?"]
    assert transport is None or transport.moved == 1
    assert result.content[0].text == "hi Flo"
    assert added.structured_content == {"result": 2}


@pytest.mark.parametrize("upstream", ["http", "sse"])
async def test_a_parked_calls_state_is_checked_and_spent(registry, stack, upstream) -> None:
    name = f"old-gone-{upstream}"
    async with (
        registered_session_upstream(registry, rich(name), upstream),
        httpx.AsyncClient(headers=bearer(stack.admin), timeout=10) as http,
    ):
        await stack.wait_for_tool(http, f"{name}__elicit")
        headers = modern_headers("tools/call", f"{name}__elicit")
        body = modern_body("tools/call", {"name": f"{name}__elicit", "arguments": {}})
        first = (await http.post(f"{stack.url}/mcp", json=body, headers=headers)).json()
        state = first["result"]["requestState"]
        forged = {
            "name": f"{name}__elicit",
            "arguments": {},
            "inputResponses": {"upstream": {"action": "decline"}},
            "requestState": state[:-2] + ("00" if not state.endswith("00") else "11"),
        }
        bad = await http.post(
            f"{stack.url}/mcp", json=modern_body("tools/call", forged, 2), headers=headers
        )
        declined = {**forged, "requestState": state}
        second = await http.post(
            f"{stack.url}/mcp", json=modern_body("tools/call", declined, 3), headers=headers
        )
        again = await http.post(
            f"{stack.url}/mcp", json=modern_body("tools/call", declined, 4), headers=headers
        )
    request = first["result"]["inputRequests"]["upstream"]
    assert first["result"]["resultType"] == "input_required"
    assert request["method"] == "elicitation/create"
    assert request["params"]["message"] == "Your name, please?"
    assert bad.json()["error"]["code"] == -32602
    assert second.json()["result"]["content"][0]["text"] == "decline"
    assert again.json()["error"]["code"] == -32602  # the call is done: its state is spent


async def test_a_legacy_clients_answer_posted_to_another_replica_reaches_the_call(
    registry, stack, replica_b
) -> None:
    init = initialize(capabilities={"elicitation": {}})
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "desk3__ask", "arguments": {}},
    }
    async with (
        run_upstream(rich("desk3")) as url,
        httpx.AsyncClient(headers=bearer(stack.admin), timeout=10) as http,
    ):
        await register(registry, "desk3", url)
        await stack.wait_for_tool(http, "desk3__ask")
        sid = (await http.post(f"{stack.url}/mcp", json=init)).headers["mcp-session-id"]
        headers = {"Mcp-Session-Id": sid}
        get_headers = {**headers, "Accept": "text/event-stream"}
        async with http.stream("GET", f"{stack.url}/mcp", headers=get_headers) as stream:
            pending = asyncio.ensure_future(
                http.post(f"{stack.url}/mcp", json=call, headers=headers)
            )
            asked = None
            async with asyncio.timeout(5):
                async for message in stream_messages(stream):
                    if message.get("method") == "elicitation/create":
                        asked = message
                        break
            answer = {
                "jsonrpc": "2.0",
                "id": asked["id"],
                "result": {"action": "accept", "content": {"name": "Eve"}},
            }
            accepted = await http.post(f"{replica_b}/mcp", json=answer, headers=headers)
            result = await pending
    assert accepted.status_code == 202
    assert result.json()["result"]["content"][0]["text"] == "hello Eve (asked)"


@pytest.mark.parametrize("transport", ["modern", "legacy", "sse"])
async def test_a_prompt_needing_input_is_answered_in_every_generation(
    registry, stack, transport
) -> None:
    async def on_elicit(context, params):  # noqa: ANN001, ANN202
        return ElicitResult(action="accept", content={"mood": "cheerful"})

    name = f"moody-{transport}"
    async with run_upstream(rich(name)) as url, httpx.AsyncClient() as probe:
        await register(registry, name, url)
        await stack.wait_for_tool(probe, f"{name}__add")
        http, sdk = sdk_client(stack, transport, elicitation_callback=on_elicit)
        async with http, sdk:
            prompt = await sdk.get_prompt(f"{name}__mood", {})
    assert prompt.messages[0].content.text == "Write something cheerful"


def capability_aware(name: str) -> MCPServer:
    """An upstream that asks, in `input_required`, only for inputs the client declared it can give.

    SEP-2322; it asks from a tool and from a prompt."""
    server = MCPServer(name)

    def asked(ctx: Context) -> InputRequiredResult:
        caps, requests = ctx.client_capabilities, {}
        if caps is not None and caps.sampling is not None:
            message = SamplingMessage(role="user", content=TextContent(type="text", text="hi"))
            params = CreateMessageRequestParams(messages=[message], max_tokens=5)
            requests["sample"] = CreateMessageRequest(params=params)
        if caps is not None and caps.elicitation is not None:
            schema = {"type": "object", "properties": {"name": {"type": "string"}}}
            params = ElicitRequestFormParams(message="Name?", requested_schema=schema)
            requests["name"] = ElicitRequest(params=params)
        if caps is not None and caps.roots is not None:
            requests["roots"] = ListRootsRequest()
        return InputRequiredResult(input_requests=requests)

    @server.tool(description="Ask what the client can answer.")
    def needs(ctx: Context) -> str | InputRequiredResult:
        return "answered" if ctx.input_responses else asked(ctx)

    @server.prompt(description="Ask what the client can answer, then render.")
    def briefing(ctx: Context) -> str | InputRequiredResult:
        return "briefed" if ctx.input_responses else asked(ctx)

    return server


def _declaring(method: str, params: dict, capabilities: dict) -> dict:
    """A 2026-07-28 request that declares `capabilities`."""
    body = modern_body(method, params)
    body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"] = capabilities
    return body


async def test_the_upstream_asks_only_for_inputs_the_client_declared_it_can_give(
    registry, stack
) -> None:
    async with (
        run_upstream(capability_aware("caps")) as url,
        httpx.AsyncClient(headers=bearer(stack.admin)) as http,
    ):
        await register(registry, "caps", url)
        await stack.wait_for_tool(http, "caps__needs")
        asked = {}
        for declared in ({"sampling": {}}, {"elicitation": {}, "roots": {}}, {}):
            call = _declaring("tools/call", {"name": "caps__needs", "arguments": {}}, declared)
            resp = await http.post(
                f"{stack.url}/mcp", json=call, headers=modern_headers("tools/call", "caps__needs")
            )
            asked[tuple(declared)] = resp.json()["result"].get("inputRequests", {})
        prompt = _declaring("prompts/get", {"name": "briefing"}, {"sampling": {}})
        via_server = await http.post(
            f"{stack.url}/mcp/servers/caps",
            json=prompt,
            headers=modern_headers("prompts/get", "briefing"),
        )
    assert {k: sorted(v) for k, v in asked.items()} == {
        ("sampling",): ["sample"],
        ("elicitation", "roots"): ["name", "roots"],
        (): [],
    }
    assert sorted(via_server.json()["result"]["inputRequests"]) == ["sample"]
