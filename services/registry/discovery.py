"""Discovery: list an upstream's tools, resources and prompts (all pages) or ask the sandbox."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from libs.common import rpc_types
from libs.common.bus import Bus, RpcError
from libs.common.errors import ApiError, Unavailable, UpstreamTimeout
from libs.common.outbound import ClientFactory, Guard
from libs.common.rpc_types import SandboxDiscover
from libs.common.ssrf import IPNetwork, SsrfRefused

MAX_PAGES = 50


class DiscoveryFailed(Exception):
    """The upstream could not be listed; `status` is what the server's status becomes."""

    def __init__(self, message: str, status: str = "unhealthy") -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Listing:
    """What a server offers."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)
    latency_ms: float = 0.0


def tool_dict(tool: Any) -> dict[str, Any]:
    """An mcp Tool (or a sandbox dict in either case style) as our snake_case dict."""
    doc = tool.model_dump(mode="json", by_alias=False) if hasattr(tool, "model_dump") else tool
    return {
        "name": doc["name"],
        "title": doc.get("title"),
        "description": doc.get("description") or "",
        "input_schema": doc.get("input_schema") or doc.get("inputSchema") or {},
        "output_schema": doc.get("output_schema") or doc.get("outputSchema"),
        "annotations": doc.get("annotations"),
        "execution": _execution(tool),
    }


def _execution(tool: Any) -> dict[str, Any] | None:
    """The tool's `execution` object as on the wire (`taskSupport`), or None when it has none."""
    model = hasattr(tool, "model_dump")
    value = getattr(tool, "execution", None) if model else tool.get("execution")
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value if isinstance(value, dict) else None


def _plain(item: Any) -> dict[str, Any]:
    """A resource or prompt as JSON (drops nothing but None values)."""
    doc = item.model_dump(mode="json", by_alias=True) if hasattr(item, "model_dump") else item
    return {k: v for k, v in doc.items() if v is not None}


def _transport(
    transport: str,
    url: str,
    headers: dict[str, str],
    timeout: float,
    factory: ClientFactory,
) -> AbstractAsyncContextManager[Any]:
    """The client transport for a remote server; HTTP goes through the pinned `factory`."""
    if transport == "sse":
        return sse_client(
            url,
            headers=headers,
            timeout=timeout,
            sse_read_timeout=timeout,
            httpx_client_factory=factory,
        )

    @asynccontextmanager
    async def streamable() -> AsyncIterator[Any]:
        http = factory(headers=headers, timeout=httpx2.Timeout(timeout))
        async with http, streamable_http_client(url, http_client=http) as streams:
            yield streams

    return streamable()


async def _pages(fetch: Callable[[str | None], Awaitable[Any]], attr: str) -> list[Any]:
    """Follow next_cursor until the listing ends."""
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = await fetch(cursor)
        items.extend(getattr(page, attr))
        cursor = page.next_cursor
        if not cursor:
            break
    return items


async def discover_remote(
    transport: str,
    url: str,
    headers: dict[str, str],
    *,
    timeout: float,
    allow: list[IPNetwork],
) -> Listing:
    """Connect with the official MCP client and list everything.

    Through the outbound guard, to the URL's host only."""
    started = time.perf_counter()
    async with _connected(transport, url, headers, timeout, allow) as client:
        caps = client.server_capabilities
        tools = await _pages(lambda c: client.list_tools(cursor=c), "tools")
        resources = (
            await _pages(lambda c: client.list_resources(cursor=c), "resources")
            if caps.resources is not None
            else []
        )
        prompts = (
            await _pages(lambda c: client.list_prompts(cursor=c), "prompts")
            if caps.prompts is not None
            else []
        )
    return Listing(
        tools=[tool_dict(t) for t in tools],
        resources=[_plain(r) for r in resources],
        prompts=[_plain(p) for p in prompts],
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
    )


async def probe_remote(
    transport: str,
    url: str,
    headers: dict[str, str],
    *,
    timeout: float,
    allow: list[IPNetwork],
) -> float:
    """Open a session with the upstream (its discover or initialize) and close it; the ms taken.

    The light health check: one exchange instead of the listing of every page."""
    started = time.perf_counter()
    async with _connected(transport, url, headers, timeout, allow):
        pass
    return round((time.perf_counter() - started) * 1000, 2)


@asynccontextmanager
async def _connected(
    transport: str, url: str, headers: dict[str, str], timeout: float, allow: list[IPNetwork]
) -> AsyncIterator[Client]:
    """An MCP client session with the upstream, through the outbound guard, within `timeout`.

    Every failure, the session's or the body's, is DiscoveryFailed."""
    guard = Guard(allow)
    try:
        host, _ = await guard.check_url(url)
    except SsrfRefused as exc:
        raise DiscoveryFailed(f"refused by SSRF rules: the URL {exc}") from None
    factory = guard.http_client_factory(only_host=host)
    try:
        async with asyncio.timeout(timeout):
            async with Client(
                _transport(transport, url, headers, timeout, factory), cache=None
            ) as client:
                yield client
    except DiscoveryFailed:
        raise
    except TimeoutError:
        raise DiscoveryFailed(f"no answer within {timeout:g}s") from None
    except Exception as exc:
        raise DiscoveryFailed(_describe(exc)) from None


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of a connection failure."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"upstream answered HTTP {exc.response.status_code}"
    if isinstance(exc, httpx2.ConnectError | ConnectionError | OSError):
        return "connection refused or unreachable"
    if isinstance(exc, httpx2.TimeoutException):
        return "upstream timed out"
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def discover_sandboxed(
    bus: Bus, server: str, *, timeout: float, transport: str | None = None
) -> Listing:
    """Ask the sandbox (stdio servers and code tools) over rpc.sandbox.discover."""
    started = time.perf_counter()
    try:
        listing = await bus.call(
            rpc_types.SANDBOX_DISCOVER,
            SandboxDiscover(server, transport=transport),
            timeout=timeout,
        )
    except Unavailable:
        raise DiscoveryFailed("sandbox unavailable", status="unknown") from None
    except UpstreamTimeout:
        raise DiscoveryFailed(f"sandbox did not answer within {timeout:g}s", "unknown") from None
    except RpcError as exc:
        raise DiscoveryFailed(f"sandbox: {exc.message}") from None
    except ApiError as exc:
        raise DiscoveryFailed(f"sandbox: {exc.message}", status="unknown") from None
    return Listing(
        tools=[tool_dict(t) for t in listing.tools if isinstance(t, dict) and "name" in t],
        resources=[_plain(r) for r in listing.resources if isinstance(r, dict)],
        prompts=[_plain(p) for p in listing.prompts if isinstance(p, dict)],
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
    )
