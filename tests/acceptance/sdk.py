"""The official Python SDK client (`mcp`) through nginx, with failures that name the capability."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.acceptance.rest import bearer


@asynccontextmanager
async def sdk_client(base_url: str, key: str, mode: str = "auto") -> AsyncIterator[Client]:
    """A connected SDK client of `{base_url}/mcp`, authenticated with an API key."""
    http = httpx2.AsyncClient(headers=bearer(key), timeout=30)
    async with (
        http,
        Client(streamable_http_client(f"{base_url}/mcp", http_client=http), mode=mode) as client,
    ):
        yield client


async def call_text(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    """The text of a tool call's result, or what went wrong instead.

    What went wrong is a JSON-RPC error or an error result, for the test to assert on outside
    the client's task group."""
    try:
        result = await client.call_tool(tool, arguments)
    except MCPError as exc:
        return f"JSON-RPC error {exc.error.code}: {exc.error.message}"
    if result.is_error:
        return f"error result: {result.content}"
    return result.content[0].text  # type: ignore[union-attr]
