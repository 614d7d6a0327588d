"""Resource updates of session-based upstreams, and subscriptions on `/mcp/servers/{path}`.

The upstreams are 2025-era Streamable HTTP and HTTP+SSE; upstreams and clients are official
SDK ones."""

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
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourceUpdated
from mcp_types import ResourceUpdatedNotification

from services.gateway.features.resource_watch import ResourceWatch
from services.gateway.jsonrpc import INVALID_PARAMS
from tests.integration.gateway.conftest import ADMIN, bearer, first_update, register
from tests.integration.gateway.upstreams import (
    NOT_FOUND,
    Followed,
    followed,
    legacy_only,
    rich,
    without_get,
)
from tests.integration.registry.conftest import LOCAL, run_upstream
from tests.support import free_port, serving

# `resources/subscribe` is what these clients speak; the SDK marks it deprecated (2026-07-28)
pytestmark = pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")

SUBSCRIBE, UNSUBSCRIBE = "resources/subscribe", "resources/unsubscribe"


@asynccontextmanager
async def session_upstream(server, transport: str, port: int | None = None) -> AsyncIterator[str]:
    """Serve an SDK server as a 2025-era upstream: Streamable HTTP with sessions, or SSE."""
    if transport == "sse":
        async with run_upstream(server, transport="sse", port=port) as url:
            yield url
    else:
        app = legacy_only(server.streamable_http_app(transport_security=LOCAL))
        async with serving(app, port=port) as base:
            yield base + "/mcp"


@asynccontextmanager
async def registered(registry, stack, name: str, transport: str, hub: Followed):
    """A `followed` upstream registered and routable (`modern`: a 2026-07-28 `rich` one)."""
    if transport == "modern":
        serve = run_upstream(rich(name))
    else:
        serve = session_upstream(followed(name, hub), transport)
    async with serve as url, httpx.AsyncClient() as probe:
        kind = "streamable-http" if transport == "modern" else transport
        await register(registry, name, url, transport=kind)
        await stack.wait_for_tool(probe, f"{name}__touch")
        yield


@asynccontextmanager
async def legacy_client(stack, transport: str, path: str = "") -> AsyncIterator[tuple]:
    """The SDK client on a legacy session at `/mcp{path}`.

    The session is Streamable HTTP or the SSE transport; yields the client and the queue of
    resource URIs it was told changed."""
    updates: asyncio.Queue[str] = asyncio.Queue()

    async def on_message(message) -> None:  # noqa: ANN001
        if isinstance(message, ResourceUpdatedNotification):
            updates.put_nowait(message.params.uri)

    http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
    if transport == "sse":
        connection = sse_client(f"{stack.url}/mcp{path}/sse", headers=bearer(stack.admin))
        if not path:
            connection = sse_client(f"{stack.url}/sse", headers=bearer(stack.admin))
    else:
        connection = streamable_http_client(f"{stack.url}/mcp{path}", http_client=http)
    client = Client(connection, mode="legacy", message_handler=on_message)
    async with http, client:
        yield client, updates


@asynccontextmanager
async def current_client(stack, path: str = "") -> AsyncIterator[Client]:
    """The SDK client on the current revision (stateless) at `/mcp{path}`."""
    http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
    connection = streamable_http_client(f"{stack.url}/mcp{path}", http_client=http)
    async with http, Client(connection, mode="auto") as client:
        yield client


async def next_update(updates: asyncio.Queue[str]) -> str:
    """The next URI the client was told changed."""
    async with asyncio.timeout(5):
        return await updates.get()


@pytest.mark.parametrize(
    ("upstream", "client"), [("streamable-http", "legacy"), ("sse", "legacy"), ("sse", "sse")]
)
async def test_a_legacy_client_gets_updates_of_a_session_upstream_until_it_unsubscribes(
    registry, stack, upstream, client
) -> None:
    hub, name = Followed(), f"fol-{upstream[:3]}-{client}"
    uri, other = f"{name}://items/7", f"{name}://items/8"
    async with registered(registry, stack, name, upstream, hub):
        async with legacy_client(stack, client) as (sdk, updates):
            await sdk.subscribe_resource(f"switchboard://{name}/{uri}")
            await sdk.call_tool(f"{name}__touch", {"item": "7"})
            first = await next_update(updates)
            await sdk.unsubscribe_resource(f"switchboard://{name}/{uri}")
            await hub.wait(UNSUBSCRIBE, uri)
            await sdk.subscribe_resource(f"switchboard://{name}/{other}")
            await sdk.call_tool(f"{name}__touch", {"item": "7"})
            await sdk.call_tool(f"{name}__touch", {"item": "8"})
            second = await next_update(updates)  # 7, were it still delivered, would come first
        await hub.wait(UNSUBSCRIBE, other)  # the session ended (DELETE, or the SSE stream closed)
    assert first == f"switchboard://{name}/{uri}"
    assert second == f"switchboard://{name}/{other}"
    assert hub.requests[:3] == [(SUBSCRIBE, uri), (UNSUBSCRIBE, uri), (SUBSCRIBE, other)]


@pytest.mark.parametrize(
    ("upstream", "client"), [("streamable-http", "legacy"), ("sse", "sse"), ("modern", "legacy")]
)
async def test_a_server_view_subscription_names_the_upstreams_own_uri(
    registry, stack, upstream, client
) -> None:
    hub, name = Followed(), f"view-{upstream[:3]}-{client}"
    uri = f"{name}://items/3"
    async with (
        registered(registry, stack, name, upstream, hub),
        legacy_client(stack, client, f"/servers/{name}") as (sdk, updates),
    ):
        await sdk.subscribe_resource(uri)
        await sdk.call_tool("touch", {"item": "3"})
        seen = await next_update(updates)
        await sdk.unsubscribe_resource(uri)
        if upstream != "modern":  # a 2026-07-28 upstream is followed by listen instead
            await hub.wait(UNSUBSCRIBE, uri)
    assert seen == uri
    assert hub.requests == ([] if upstream == "modern" else [(SUBSCRIBE, uri), (UNSUBSCRIBE, uri)])


@pytest.mark.parametrize("upstream", ["streamable-http", "sse"])
async def test_a_listen_stream_gets_updates_of_a_session_upstream(
    registry, stack, upstream
) -> None:
    hub, name = Followed(), f"lis-{upstream[:3]}"
    uri = f"switchboard://{name}/{name}://items/9"
    async with registered(registry, stack, name, upstream, hub):
        async with current_client(stack) as client:
            async with client.listen(resource_subscriptions=[uri]) as sub:
                honored = sub.honored.resource_subscriptions
                await client.call_tool(f"{name}__touch", {"item": "9"})
                async with asyncio.timeout(5):
                    event = await anext(aiter(sub))
        await hub.wait(UNSUBSCRIBE, f"{name}://items/9")  # the stream's end unsubscribes
    assert honored == [uri]
    assert event == ResourceUpdated(uri=uri)


@pytest.mark.parametrize("upstream", ["streamable-http", "modern"])
async def test_a_listen_stream_on_a_server_view_follows_upstream_uris(
    registry, stack, upstream
) -> None:
    hub, name = Followed(), f"lis-view-{upstream[:3]}"
    uri = f"{name}://items/4"
    async with registered(registry, stack, name, upstream, hub):
        async with current_client(stack, f"/servers/{name}") as client:
            async with client.listen(resource_subscriptions=[uri]) as sub:
                honored = sub.honored.resource_subscriptions
                await client.call_tool("touch", {"item": "4"})
                async with asyncio.timeout(5):
                    event = await anext(aiter(sub))
    assert honored == [uri]
    assert event == ResourceUpdated(uri=uri)


def rpc(rid: int, method: str, params: dict) -> dict:
    """A JSON-RPC request."""
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


async def test_a_subscription_taken_by_another_replica_delivers_a_session_upstreams_update(
    registry, stack, replica_b
) -> None:
    hub, name = Followed(), "fol-replica"
    uri = f"{name}://items/5"
    init = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    }
    async with (
        registered(registry, stack, name, "streamable-http", hub),
        httpx.AsyncClient(headers=bearer(stack.admin), timeout=10) as http,
    ):
        mcp = f"{stack.url}/mcp"
        sid = (await http.post(mcp, json=rpc(1, "initialize", init))).headers["mcp-session-id"]
        headers = {"Mcp-Session-Id": sid}
        params = {"uri": f"switchboard://{name}/{uri}"}
        async with http.stream(
            "GET", mcp, headers={**headers, "Accept": "text/event-stream"}
        ) as stream:
            subscribed = await http.post(
                f"{replica_b}/mcp", json=rpc(2, SUBSCRIBE, params), headers=headers
            )
            touch = {"name": f"{name}__touch", "arguments": {"item": "5"}}
            await http.post(mcp, json=rpc(3, "tools/call", touch), headers=headers)
            seen = await first_update(stream)
            gone = await http.post(mcp, json=rpc(4, UNSUBSCRIBE, params), headers=headers)
            await hub.wait(UNSUBSCRIBE, uri)  # replica B held it: the broadcast reached it
    assert subscribed.json()["result"] == {}
    assert seen["params"]["uri"] == f"switchboard://{name}/{uri}"
    assert gone.json()["result"] == {}


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_a_restarted_upstream_is_subscribed_again_on_its_new_session(
    registry, core_factory, transport
) -> None:
    port, name = free_port(), f"again-{transport[:3]}"
    first, second = Followed(), Followed()
    uri = f"{name}://items/1"
    got: asyncio.Queue[str] = asyncio.Queue()

    async def deliver(changed: str) -> None:
        got.put_nowait(changed)

    touch = {"name": f"{name}__touch", "arguments": {"item": "1"}}
    async with session_upstream(followed(name, first), transport, port) as url:
        await register(registry, name, url, transport=transport)
        core = await core_factory()
        watch = ResourceWatch(core.pool, registry.bus, core.table)
        await watch.start()
        await watch.add(core.table.servers[name], uri, "sess-1", deliver)
        await core.call(ADMIN, "tools/call", touch)
        before = await next_update(got)
    try:
        async with session_upstream(followed(name, second), transport, port):
            await second.wait(SUBSCRIBE, uri)  # the new session follows the URI again
            await core.call(ADMIN, "tools/call", touch)
            after = await next_update(got)
    finally:
        await watch.stop()
    assert before == after == uri
    assert first.requests == [(SUBSCRIBE, uri)]


async def test_subscribing_where_the_upstream_offers_no_subscriptions_is_invalid_params(
    registry, stack
) -> None:
    async with (
        session_upstream(rich("plain"), "streamable-http") as url,
        httpx.AsyncClient() as probe,
    ):
        await register(registry, "plain", url)
        await stack.wait_for_tool(probe, "plain__touch")
        async with legacy_client(stack, "legacy", "/servers/plain") as (sdk, _):
            with pytest.raises(MCPError) as raw:
                await sdk.subscribe_resource("plain://items/1")
        async with legacy_client(stack, "legacy") as (sdk, _):
            with pytest.raises(MCPError) as wrapped:
                await sdk.subscribe_resource("switchboard://plain/plain://items/1")
            with pytest.raises(MCPError) as unknown:
                await sdk.subscribe_resource("switchboard://nowhere/x://1")
    assert raw.value.error.code == INVALID_PARAMS
    assert wrapped.value.error.code == INVALID_PARAMS
    assert unknown.value.error.code == INVALID_PARAMS


async def test_an_upstreams_refusal_is_relayed_and_its_other_resources_still_follow(
    registry, stack
) -> None:
    hub, name = Followed(), "refuses"
    async with (
        registered(registry, stack, name, "streamable-http", hub),
        legacy_client(stack, "legacy", f"/servers/{name}") as (sdk, updates),
    ):
        with pytest.raises(MCPError) as refused:
            await sdk.subscribe_resource(f"{name}://elsewhere")
        await sdk.subscribe_resource(f"{name}://items/2")
        await sdk.call_tool("touch", {"item": "2"})
        seen = await next_update(updates)
    assert refused.value.error.code == NOT_FOUND
    assert seen == f"{name}://items/2"
    assert hub.requests[0] == (SUBSCRIBE, f"{name}://items/2")


async def test_an_upstream_without_a_standalone_stream_cannot_be_followed(registry, stack) -> None:
    hub, name = Followed(), "noget"
    server = followed(name, hub)
    app = without_get(legacy_only(server.streamable_http_app(transport_security=LOCAL)))
    async with serving(app) as base, httpx.AsyncClient() as probe:
        await register(registry, name, base + "/mcp")
        await stack.wait_for_tool(probe, f"{name}__touch")
        async with legacy_client(stack, "legacy", f"/servers/{name}") as (sdk, _):
            with pytest.raises(MCPError) as exc:
                await sdk.subscribe_resource(f"{name}://items/1")
            touched = await sdk.call_tool("touch", {"item": "1"})
    assert exc.value.error.code == INVALID_PARAMS
    assert touched.content[0].text == "told 0"  # no session follows it upstream


async def test_an_abandoned_sessions_subscriptions_end_when_the_session_expires(
    registry, stack, pg_url, nats_url, namespace, monkeypatch
) -> None:
    from services.gateway.app import create_app
    from services.gateway.features import resource_watch
    from services.gateway.settings import GatewaySettings
    from tests.integration.gateway.conftest import Stack
    from tests.support import settings_for

    monkeypatch.setattr(resource_watch, "SWEEP_S", 0.2, raising=False)
    settings = settings_for(
        GatewaySettings,
        pg_url=pg_url,
        nats_url=nats_url,
        namespace=namespace,
        GATEWAY_SESSION_TTL_S=2,
    )
    hub, name = Followed(), "fol-abandoned"
    uri = f"{name}://items/3"
    async with (
        registered(registry, stack, name, "streamable-http", hub),
        serving(create_app(settings)) as base,
        httpx.AsyncClient(timeout=10) as http,
    ):
        short_lived = Stack(url=base, auth=stack.auth, admin=stack.admin)
        await short_lived.wait_for_tool(http, f"{name}__touch")
        headers = {**bearer(stack.admin), "Accept": "application/json, text/event-stream"}
        init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x"}}
        opened = await http.post(f"{base}/mcp", json=rpc(1, "initialize", init), headers=headers)
        headers["Mcp-Session-Id"] = opened.headers["mcp-session-id"]
        headers["MCP-Protocol-Version"] = "2025-11-25"
        params = {"uri": f"switchboard://{name}/{uri}"}
        subscribed = await http.post(
            f"{base}/mcp", json=rpc(2, "resources/subscribe", params), headers=headers
        )
        # the client goes away without DELETE; its session id expires after 2 s
        await hub.wait(UNSUBSCRIBE, uri, timeout=10)
    assert subscribed.json()["result"] == {}
    assert hub.requests == [(SUBSCRIBE, uri), (UNSUBSCRIBE, uri)]
