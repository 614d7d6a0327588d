"""Resources, templates, prompts, completion and logging of every readable server on /mcp."""

from __future__ import annotations

import secrets

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import PromptReference
from prometheus_client import REGISTRY

from services.gateway.jsonrpc import INVALID_PARAMS, UPSTREAM_ERROR, RpcFault
from tests.integration.gateway.conftest import ADMIN, bearer, member, register
from tests.integration.gateway.upstreams import rich
from tests.integration.registry.conftest import run_upstream
from tests.support import free_port

CIRCUIT = "switchboard_gateway_circuit_state"


async def test_lists_are_namespaced_and_read_routes_back(registry, core_factory) -> None:
    async with run_upstream(rich("alpha")) as a, run_upstream(rich("beta"), transport="sse") as b:
        await register(registry, "alpha", a)
        await register(registry, "beta", b, transport="sse")
        core = await core_factory()
        resources = await core.call(ADMIN, "resources/list", {})
        templates = await core.call(ADMIN, "resources/templates/list", {})
        prompts = await core.call(ADMIN, "prompts/list", {})
        read = await core.call(ADMIN, "resources/read", {"uri": "switchboard://beta/beta://readme"})
        item = await core.call(
            ADMIN, "resources/read", {"uri": "switchboard://alpha/alpha://items/42"}
        )
        prompt = await core.call(
            ADMIN, "prompts/get", {"name": "beta__greet", "arguments": {"who": "Ada"}}
        )
        completed = await core.call(
            ADMIN,
            "completion/complete",
            {
                "ref": {"type": "ref/prompt", "name": "alpha__greet"},
                "argument": {"name": "who", "value": "al"},
            },
        )
        level = await core.call(ADMIN, "logging/setLevel", {"level": "warning"})
    assert [r["uri"] for r in resources["resources"]] == [
        "switchboard://alpha/alpha://readme",
        "switchboard://beta/beta://readme",
    ]
    assert [t["uriTemplate"] for t in templates["resourceTemplates"]] == [
        "switchboard://alpha/alpha://items/{item}",
        "switchboard://beta/beta://items/{item}",
    ]
    assert [p["name"] for p in prompts["prompts"]] == [
        "alpha__mood",
        "alpha__greet",
        "beta__mood",
        "beta__greet",
    ]
    assert read["contents"][0]["text"] == "readme of beta"
    assert read["contents"][0]["uri"] == "switchboard://beta/beta://readme"
    assert item["contents"][0]["text"] == "item 42 of alpha"
    assert prompt["messages"][0]["content"]["text"] == "Hello Ada from beta"
    assert completed["completion"]["values"] == ["alice", "albert"]
    assert level == {}


async def test_only_readable_servers_are_listed_or_read(registry, core_factory) -> None:
    async with run_upstream(rich("alpha")) as a, run_upstream(rich("beta")) as b:
        await register(registry, "alpha", a)
        await register(registry, "beta", b)
        core = await core_factory()
        alice = member(("team-a", "alpha", {"read"}))
        prompts = await core.call(alice, "prompts/list", {})
        with pytest.raises(RpcFault) as read:
            await core.call(alice, "resources/read", {"uri": "switchboard://beta/beta://readme"})
        with pytest.raises(RpcFault) as get:
            await core.call(alice, "prompts/get", {"name": "beta__greet", "arguments": {}})
        with pytest.raises(RpcFault) as bad:
            await core.call(alice, "resources/read", {"uri": "alpha://readme"})
    assert [p["name"] for p in prompts["prompts"]] == ["alpha__mood", "alpha__greet"]
    assert read.value.code == get.value.code == bad.value.code == INVALID_PARAMS


async def test_a_down_server_is_named_and_the_others_are_listed(registry, core_factory) -> None:
    async with run_upstream(rich("alpha")) as a:
        await register(registry, "alpha", a)
        await register(registry, "gone", f"http://127.0.0.1:{free_port()}/mcp")
        core = await core_factory()
        core.table.servers["gone"].status = "healthy"  # the registry saw it up a moment ago
        listed = await core.call(ADMIN, "resources/list", {})
    assert [r["uri"] for r in listed["resources"]] == ["switchboard://alpha/alpha://readme"]
    assert listed["_meta"]["io.switchboard/unavailableServers"] == ["gone"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_sdk_client_reads_resources_and_prompts(registry, stack, mode) -> None:
    async with run_upstream(rich("docs")) as url, httpx.AsyncClient() as probe:
        await register(registry, f"docs-{mode}", url)
        await stack.wait_for_tool(probe, f"docs-{mode}__add")
        http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
        client = Client(streamable_http_client(f"{stack.url}/mcp", http_client=http), mode=mode)
        async with http, client:
            resources = await client.list_resources()
            read = await client.read_resource(resources.resources[0].uri)
            prompt = await client.get_prompt(f"docs-{mode}__greet", {"who": "Bo"})
            done = await client.complete(
                PromptReference(name=f"docs-{mode}__greet"), {"name": "who", "value": "b"}
            )
            with pytest.raises(MCPError) as exc:
                await client.get_prompt(f"docs-{mode}__nope", {})
    assert str(resources.resources[0].uri) == f"switchboard://docs-{mode}/docs://readme"
    assert read.contents[0].text == "readme of docs"
    assert prompt.messages[0].content.text == "Hello Bo from docs"
    assert done.completion.values == ["bob"]
    assert exc.value.error.code in (-32602, -32603)


async def test_a_uri_with_a_line_break_reaches_the_upstream_but_never_its_headers(
    registry, core_factory
) -> None:
    """Mcp-Name carries the URI toward a 2026-07-28 upstream, unless it would split the request.

    One that would split the request is left out of the headers (the body still carries it), so
    the upstream answers for itself and its breaker does not count a failure."""
    async with run_upstream(rich("alpha")) as a:
        await register(registry, "alpha", a)
        core = await core_factory()
        uri = "switchboard://alpha/alpha://items/1\r\nX-Injected: yes"
        for _ in range(6):  # more than the breaker's failure threshold
            try:
                read = await core.call(ADMIN, "resources/read", {"uri": uri})
            except RpcFault as fault:
                assert fault.code != UPSTREAM_ERROR, fault.message
            else:
                assert "X-Injected" in read["contents"][0]["text"]
        assert core.pool.breaker("alpha").failures == 0


async def test_an_upstream_called_once_shows_its_breaker_closed_in_the_metrics(
    registry, core_factory
) -> None:
    name = f"cb{secrets.token_hex(3)}"
    async with run_upstream(rich(name)) as url:
        await register(registry, name, url)
        core = await core_factory()
        assert REGISTRY.get_sample_value(CIRCUIT, {"server": name}) is None
        await core.call(ADMIN, "resources/list", {})
    # the series exists before any failure (dashboards and the breaker alert read it)
    assert REGISTRY.get_sample_value(CIRCUIT, {"server": name}) == 0
