"""Traced, a tools/call is one trace: request → MCP request → upstream call, traceparent upstream.

Untraced, the upstream gets no traceparent from the gateway, even when the client sent one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from libs.common import tracing
from services.gateway.settings import GatewaySettings
from services.registry.context import Registry
from tests.integration.gateway.conftest import (
    Stack,
    bearer,
    calculator,
    modern_body,
    modern_headers,
    register,
)
from tests.support.upstreams import run_upstream

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process (the gateway app runs in it) for one test."""
    exporter = InMemorySpanExporter()
    tracing.configure(GatewaySettings(), "gateway-test", SimpleSpanProcessor(exporter))
    yield exporter
    tracing.shutdown()


def named(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    """The one finished span called `name`."""
    found = [s for s in exporter.get_finished_spans() if s.name == name]
    assert len(found) == 1, sorted(s.name for s in exporter.get_finished_spans())
    return found[0]


def parent_of(span: ReadableSpan) -> int:
    """The span id of a span's parent."""
    assert span.parent is not None
    return span.parent.span_id


async def call(stack: Stack, name: str, arguments: dict[str, Any], **headers: str) -> Any:
    """One stateless tools/call over HTTP, as the admin: its JSON-RPC answer."""
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await http.post(
            f"{stack.url}/mcp",
            json=modern_body("tools/call", {"name": name, "arguments": arguments}, rid=7),
            headers={**modern_headers("tools/call", name), **bearer(stack.admin), **headers},
        )
    return resp.json()


async def test_a_traced_tool_call_is_one_trace_down_to_the_upstream(
    registry: Registry, stack: Stack, spans: InMemorySpanExporter
) -> None:
    seen: list[dict[str, str]] = []
    async with run_upstream(calculator(), seen=seen) as url:
        await register(registry, "calc", url)
        async with httpx.AsyncClient(timeout=10) as http:
            await stack.wait_for_tool(http, "calc__add")
        seen.clear()
        spans.clear()
        reply = await call(stack, "calc__add", {"a": 2, "b": 3}, traceparent=CLIENT_TRACEPARENT)
    assert reply["result"]["structuredContent"] == {"result": 5}

    http_span = named(spans, "POST /mcp")
    request = named(spans, "tools/call calc__add")
    upstream = named(spans, "tools/call add")
    assert http_span.kind is SpanKind.SERVER and parent_of(http_span) == 0x00F067AA0BA902B7
    assert request.kind is SpanKind.SERVER and parent_of(request) == http_span.context.span_id
    assert upstream.kind is SpanKind.CLIENT and parent_of(upstream) == request.context.span_id
    assert {s.context.trace_id for s in (http_span, request, upstream)} == {int(CLIENT_TRACE, 16)}
    assert request.attributes is not None and upstream.attributes is not None
    assert request.attributes == {
        "mcp.method.name": "tools/call",
        "gen_ai.tool.name": "calc__add",
        "gen_ai.operation.name": "execute_tool",
        "jsonrpc.request.id": "7",
        "mcp.protocol.version": "2026-07-28",
        "switchboard.client": "test/1",
        "switchboard.endpoint": "/mcp",
    }
    assert upstream.attributes["gen_ai.tool.name"] == "add"
    assert upstream.attributes["server.address"] == "127.0.0.1"
    assert upstream.attributes["switchboard.server"] == "calc"

    posted = [h for h in seen if h.get("mcp-method") == "tools/call"]
    assert len(posted) == 1
    _, trace_id, parent_id, _ = posted[0]["traceparent"].split("-")
    assert trace_id == CLIENT_TRACE
    assert int(parent_id, 16) == upstream.context.span_id


async def test_a_refused_call_s_span_names_its_json_rpc_code(
    stack: Stack, spans: InMemorySpanExporter
) -> None:
    reply = await call(stack, "nosuch__tool", {})
    assert reply["error"]["code"] == -32602
    request = named(spans, "tools/call nosuch__tool")
    assert request.status.status_code is StatusCode.ERROR
    assert request.attributes is not None
    assert request.attributes["error.type"] == "-32602"
    assert request.attributes["rpc.response.status_code"] == "-32602"


async def test_untraced_the_upstream_gets_no_traceparent_even_when_the_client_sent_one(
    registry: Registry, stack: Stack
) -> None:
    assert not tracing.enabled
    seen: list[dict[str, str]] = []
    async with run_upstream(calculator(), seen=seen) as url:
        await register(registry, "calc", url)
        async with httpx.AsyncClient(timeout=10) as http:
            await stack.wait_for_tool(http, "calc__add")
        reply = await call(stack, "calc__add", {"a": 1, "b": 1}, traceparent=CLIENT_TRACEPARENT)
    assert reply["result"]["structuredContent"] == {"result": 2}
    assert [h for h in seen if h.get("mcp-method") == "tools/call"]
    assert not [h for h in seen if "traceparent" in h]
