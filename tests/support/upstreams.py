"""Real SDK upstream MCP servers for tests: one with weather tools, and a runner on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import orjson
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import JSONRPCMessage, Tool, ToolExecution
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.support import serving

LOCAL = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["127.0.0.1:*", "localhost:*"],
    allowed_origins=["http://127.0.0.1:*", "http://localhost:*"],
)

Upstream = Callable[..., AbstractAsyncContextManager[str]]


class DeclaringServer(MCPServer):
    """An SDK server whose tools declare `execution` as `execution` says.

    By tool name, changeable while it runs; the SDK's own server declares none."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.execution: dict[str, dict[str, Any]] = {}

    async def list_tools(self) -> list[Tool]:
        """The tools, each with its `execution` when one is set."""
        tools = []
        for tool in await super().list_tools():
            if tool.name in self.execution:
                execution = ToolExecution.model_validate(self.execution[tool.name])
                tool = tool.model_copy(update={"execution": execution})
            tools.append(tool)
        return tools


def make_upstream(name: str = "weather", server: MCPServer | None = None) -> MCPServer:
    """An MCP server (`server`, else a new one) with two tools, a resource and a prompt."""
    server = server or MCPServer(name)

    @server.tool(description="Current temperature in a city.")
    def temperature(city: str) -> str:
        return f"21C in {city}"

    @server.tool(description="Forecast for the next days.")
    def forecast(city: str, days: int = 3) -> str:
        return f"sunny for {days} days in {city}"

    @server.resource("weather://stations")
    def stations() -> str:
        return "a,b,c"

    @server.prompt()
    def ask_weather(city: str) -> str:
        return f"What is the weather in {city}?"

    return server


def wide_upstream(count: int = 1000, name: str = "wide") -> MCPServer:
    """An MCP server with `count` small tools, `t0000` to `t{count-1}` (each adds its index)."""
    server = MCPServer(name)

    def adder(i: int) -> Callable[[int], int]:
        def tool(value: int) -> int:
            return value + i

        return tool

    for i in range(count):
        server.tool(name=f"t{i:04d}", description=f"Add {i} to a value.")(adder(i))
    return server


async def read_body(receive: Receive) -> bytes:
    """The whole body of an ASGI request."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app `body` once, then what the server receives (disconnects)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def handshake_era(app: ASGIApp) -> ASGIApp:
    """An SDK app whose connections all open in the handshake era (2025-11-25).

    Over Streamable HTTP and SSE alike: the client's `server/discover` probe loses its
    2026-07-28 envelope, so the server opens a legacy connection, refuses the probe, and the
    client falls back to `initialize`. (2026-07-28 has no `execution` on tools: the SDK drops it
    there.)"""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        body = await read_body(receive)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and doc.get("method") == "server/discover":
            doc["params"] = {k: v for k, v in (doc.get("params") or {}).items() if k != "_meta"}
            body = orjson.dumps(doc)
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await app({**scope, "headers": headers}, replaying(body, receive), send)

    return wrapped


class MemoryEventStore(EventStore):
    """Every event of every stream, so that a client can resume after the last one it saw.

    Like any store behind the SDK's `EventStore` it cannot tell sessions apart: the SDK gives
    one store to every session and names a request's stream by the request's id, so a replay
    carries the events of every session that used that id (the gateway's ids avoid others').
    """

    def __init__(self) -> None:
        self.events: list[tuple[str, str, JSONRPCMessage | None]] = []  # (id, stream, message)

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        """Keep one event; its id orders it."""
        event_id = f"{len(self.events) + 1:08d}"
        self.events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(
        self, last_event_id: str, send_callback: EventCallback
    ) -> str | None:
        """Send the events of the same stream after `last_event_id`."""
        seen = next((e for e in self.events if e[0] == last_event_id), None)
        if seen is None:
            return None
        for event_id, stream_id, message in self.events:
            if event_id > last_event_id and stream_id == seen[1] and message is not None:
                await send_callback(EventMessage(message, event_id))
        return seen[1]


def recording(app: ASGIApp, seen: list[dict[str, str]]) -> ASGIApp:
    """`app`, noting the headers of each HTTP request it gets in `seen` (names in lower case)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            seen.append({k.decode(): v.decode("latin-1") for k, v in scope["headers"]})
        await app(scope, receive, send)

    return wrapped


RETRY_MS = 100  # the `retry` a resumable upstream asks for: short, so that tests stay quick


@asynccontextmanager
async def run_upstream(
    server: MCPServer,
    transport: str = "streamable-http",
    port: int | None = None,
    *,
    handshake: bool = False,
    resumable: bool = False,
    json_response: bool = False,
    stateless: bool = False,
    seen: list[dict[str, str]] | None = None,
) -> AsyncIterator[str]:
    """Serve `server` over Streamable HTTP (/mcp) or SSE (/sse); yields its MCP URL.

    In the handshake era only when `handshake`, priming its SSE responses and keeping their
    events when `resumable`, answering with JSON instead of SSE when `json_response`, without
    sessions when `stateless`; the headers of every request it gets go to `seen`."""
    if transport == "sse":
        app = server.sse_app(transport_security=LOCAL)
        path = "/sse"
    else:
        store = MemoryEventStore() if resumable else None
        app = server.streamable_http_app(
            transport_security=LOCAL,
            json_response=json_response,
            stateless_http=stateless,
            event_store=store,
            retry_interval=RETRY_MS if resumable else None,
        )
        path = "/mcp"
    if handshake:
        app = handshake_era(app)
    if seen is not None:
        app = recording(app, seen)
    async with serving(app, port=port) as base:
        yield base + path
