"""Tools imported from an external MCP source are called at the source, under their server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.jsonrpc import UPSTREAM_ERROR, UPSTREAM_UNAVAILABLE, RpcFault
from services.registry import sources
from services.registry.context import Registry
from services.registry.schemas import SourceCreate
from tests.integration.gateway.conftest import ADMIN, bearer, calculator, register
from tests.integration.registry.conftest import LOCAL
from tests.support import serving


def library() -> MCPServer:
    """Upstream B: a tool A does not have."""
    server = MCPServer("library")

    @server.tool(description="Look a book up by title.")
    def lookup(title: str) -> str:
        return f"found {title} at the library"

    return server


class Seen:
    """Authorization headers an upstream received."""

    def __init__(self) -> None:
        self.authorization: set[bytes] = set()

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """Record the header of every HTTP request, then serve it."""

        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                value = dict(scope.get("headers") or ()).get(b"authorization")
                if value is not None:
                    self.authorization.add(value)
            await app(scope, receive, send)

        return wrapped


@asynccontextmanager
async def run_source(server: MCPServer, transport: str, seen: Seen) -> AsyncIterator[str]:
    """Serve upstream B on either transport, recording the headers it gets."""
    if transport == "sse":
        app, path = server.sse_app(transport_security=LOCAL), "/sse"
    else:
        app, path = server.streamable_http_app(transport_security=LOCAL), "/mcp"
    async with serving(seen.wrap(app)) as base:
        yield base + path


async def import_from(
    registry: Registry, server: Any, url: str, transport: str, tools: list[str]
) -> Any:
    """Add a source to `server`, discover it and import `tools`, through the registry's logic."""
    body = SourceCreate(
        name="library", url=url, transport=transport, headers={"Authorization": "Bearer lib-s3"}
    )
    async with registry.pool.acquire() as conn, conn.transaction():
        source = await sources.create(registry, conn, server, body, "test")
    found = await sources.discover(registry, source, "test")
    assert found["status"] == "healthy", found
    async with registry.pool.acquire() as conn, conn.transaction():
        fresh, host = await sources.get_or_404(conn, str(source["id"]))
        await sources.import_tools(registry, conn, host, fresh, tools, "test")
    return source


@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_an_imported_tool_is_called_at_its_source_and_audited_under_its_server(
    registry, stack, calls, transport
) -> None:
    auth = stack.auth
    # a name per run: a routing entry left by the other run could otherwise answer the wait
    name = "shelf" if transport == "streamable-http" else "shelfsse"
    seen = Seen()
    async with (
        run_source(calculator("a"), "streamable-http", Seen()) as url_a,
        run_source(library(), transport, seen) as url_b,
        httpx.AsyncClient() as probe,
    ):
        server = await register(registry, name, url_a)
        member = await auth.granted_member(name)
        alice, key = member.user, member.key
        await import_from(registry, server, url_b, transport, ["lookup"])
        await stack.wait_for_tool(probe, f"{name}__lookup", key)
        http = httpx2.AsyncClient(headers=bearer(key), timeout=10)
        client = Client(streamable_http_client(f"{stack.url}/mcp", http_client=http), mode="auto")
        async with http, client:
            listed = await client.list_tools()
            found = await client.call_tool(f"{name}__lookup", {"title": "Dune"})
            own = await client.call_tool(f"{name}__add", {"a": 2, "b": 3})
    assert {f"{name}__lookup", f"{name}__add"} <= {t.name for t in listed.tools}
    assert found.content[0].text == "found Dune at the library"
    assert own.structured_content == {"result": 5}
    assert b"Bearer lib-s3" in seen.authorization  # the source's decrypted headers
    event = await calls.wait_for(
        lambda e: e.data["tool"] == "lookup" and e.data["principal_id"] == alice.id
    )
    assert event.data["server"] == name
    assert event.data["status"] == "ok"
    assert event.data["arguments"] == {"title": "[redacted]"}  # the default policy: keys


async def test_a_source_has_its_own_pooled_session_and_breaker(registry, core_factory) -> None:
    async with (
        run_source(calculator("a"), "streamable-http", Seen()) as url_a,
        run_source(library(), "streamable-http", Seen()) as url_b,
    ):
        server = await register(registry, "shelf", url_a)
        await import_from(registry, server, url_b, "streamable-http", ["lookup"])
        core = await core_factory(GATEWAY_BREAKER_FAILURES=1, GATEWAY_BREAKER_RESET_S=60)
        await core.wait_for_tool("shelf__lookup")
        entry = core.table.servers["shelf"]
        source = entry.sources[0]
        for _ in range(2):
            await core.call(
                ADMIN, "tools/call", {"name": "shelf__lookup", "arguments": {"title": "x"}}
            )
        await core.call(ADMIN, "tools/call", {"name": "shelf__add", "arguments": {"a": 1, "b": 1}})
        upstream = core.pool.upstream(source)
        assert upstream is not core.pool.upstream(entry)
        assert upstream.server.url == url_b and upstream.connected
        session = upstream.session_id
        await core.call(ADMIN, "tools/call", {"name": "shelf__lookup", "arguments": {"title": "y"}})
        assert upstream.session_id == session  # no handshake per call
    # both upstreams are gone now: the source's circuit opens, the server's own stays closed
    with pytest.raises(RpcFault) as down:
        await core.call(ADMIN, "tools/call", {"name": "shelf__lookup", "arguments": {"title": "z"}})
    with pytest.raises(RpcFault) as shut:
        await core.call(ADMIN, "tools/call", {"name": "shelf__lookup", "arguments": {"title": "z"}})
    assert down.value.code == UPSTREAM_ERROR
    assert shut.value.code == UPSTREAM_UNAVAILABLE
    assert core.pool.breaker(entry.key).state == "closed"
    listed = await core.call(ADMIN, "tools/list", {})
    names = {t["name"] for t in listed["tools"]}
    assert "shelf__add" in names and "shelf__lookup" not in names
    assert listed["_meta"]["io.switchboard/unavailableServers"] == ["shelf"]
