"""Real SDK upstream MCP servers for tests: one with weather tools, and a runner on a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from tests.support import serving

LOCAL = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["127.0.0.1:*", "localhost:*"],
    allowed_origins=["http://127.0.0.1:*", "http://localhost:*"],
)

Upstream = Callable[..., AbstractAsyncContextManager[str]]


def make_upstream(name: str = "weather") -> MCPServer:
    """An MCP server with two tools, a resource and a prompt."""
    server = MCPServer(name)

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


@asynccontextmanager
async def run_upstream(
    server: MCPServer, transport: str = "streamable-http", port: int | None = None
) -> AsyncIterator[str]:
    """Serve `server` over Streamable HTTP (/mcp) or SSE (/sse); yields its MCP URL."""
    if transport == "sse":
        app = server.sse_app(transport_security=LOCAL)
        path = "/sse"
    else:
        app = server.streamable_http_app(transport_security=LOCAL)
        path = "/mcp"
    async with serving(app, port=port) as base:
        yield base + path
