"""The benchmark's upstream: official SDK, Streamable HTTP, stateless JSON, 50 tools."""

import sys

import uvicorn
from mcp.server.mcpserver import MCPServer


def build(tools: int = 50) -> MCPServer:
    """An MCP server with `echo` and `tools - 1` more small tools."""
    # WARNING: at INFO the SDK renders a line for each 2025-revision request it serves
    # statelessly ("Terminating session"), which would be most of that request's cost
    server = MCPServer("bench", log_level="WARNING")

    @server.tool(description="Echo the text back.")
    def echo(text: str) -> str:
        return text

    for i in range(tools - 1):

        def make(i: int):
            def tool(value: int) -> int:
                return value + i

            return tool

        server.tool(name=f"tool_{i:02d}", description=f"Add {i} to a value.")(make(i))
    return server


if __name__ == "__main__":
    app = build().streamable_http_app(json_response=True, stateless_http=True)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        loop="uvloop",
        http="httptools",
        access_log=False,
    )
