"""The npm peers as users run them: the TypeScript SDK client, and server-everything upstream.

server-everything runs as a TypeScript SDK upstream over Streamable HTTP; both are on the pinned
Node 22."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from libs.devstack import ports
from tests.support import node


async def run_ts_client(mcp_url: str, key: str, tool: str, arguments: dict[str, Any]) -> dict:
    """The TypeScript SDK client against `mcp_url`: its report (sessionId, tools, result)."""
    plan = [{"key": "call", "name": tool, "arguments": arguments, "progress": False}]
    report = await node.run_sdk_client(mcp_url, key, "streamable", plan)
    assert "failure" not in report, f"gateway: the TypeScript SDK client: {report.get('failure')}"
    call = report["calls"]["call"]
    assert "error" not in call, f"gateway: the TypeScript SDK client's call: {call['error']}"
    return {**report, "result": call["result"]}


@asynccontextmanager
async def everything_over_http() -> AsyncIterator[str]:
    """`server-everything streamableHttp` on a free port; yields its MCP URL.

    It is the TypeScript SDK's server, with an event store, so it primes SSE streams."""
    node.installed()
    port = ports.free_port()
    server = await asyncio.create_subprocess_exec(
        str(node.NODE22),
        str(node.SERVER_EVERYTHING),
        "streamableHttp",
        env={**os.environ, "PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(20):
            while True:
                assert server.returncode is None, "server-everything exited at start"
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    break
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        if server.returncode is None:
            server.kill()
        await server.wait()
