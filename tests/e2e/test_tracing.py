"""Tracing across the stack: a stack exporting to an OTLP receiver of the test's own.

A tools/call through nginx is one trace: the gateway's request and MCP spans, its upstream call
(whose traceparent the upstream receives), the audit consumer storing the call's record, and for
a server hosted in the sandbox the sandbox's span. The default stack sends no traceparent.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.devstack import postgres
from libs.devstack.harness import until
from tests.e2e.conftest import SecuredStack, running_stack
from tests.e2e.gateway_support import (
    admin_token,
    api_key,
    bearer,
    call_tool,
    register,
    wait_listed,
)
from tests.integration.gateway.conftest import calculator
from tests.support.otlp import ReceivedSpan, Receiver, receiving
from tests.support.upstreams import run_upstream

ECHO_SERVER = str(Path(__file__).resolve().parents[1] / "fixtures" / "sandbox" / "echo_server.py")
RECORD_SPAN = "events.gateway.tool.called process"  # the audit consumer storing a call's record


@dataclass
class Traced:
    """A stack exporting its spans to `receiver`, with the admin's JWT and an API key."""

    stack: SecuredStack
    receiver: Receiver
    token: str
    key: str


@pytest.fixture(scope="module")
async def traced(pg_server: postgres.Postgres, namespace: str) -> AsyncIterator[Traced]:
    """Boot a stack whose services export spans (batched for 100 ms) to a receiver."""
    async with receiving() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        async with (
            running_stack(pg_server, namespace, "trace", env) as stack,
            httpx.AsyncClient(base_url=stack.url, timeout=10) as api,
        ):
            token = await admin_token(api)
            yield Traced(stack, receiver, token, await api_key(api, token))


def one(spans: list[ReceivedSpan], service: str, name: str) -> ReceivedSpan:
    """The one span of `service` called `name`."""
    found = [s for s in spans if s.service == f"switchboard-{service}" and s.name == name]
    assert len(found) == 1, sorted((s.service, s.name) for s in spans)
    return found[0]


async def answered(
    api: httpx.AsyncClient,
    key: str,
    tool: str,
    arguments: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Call `tool` until it answers (10 s at most); its result.

    A new stack's gateway may refuse a loopback upstream until it holds the registry's SSRF
    allowlist; a refused call never reaches the upstream."""
    results: list[dict[str, Any]] = []

    async def answers() -> bool:
        resp = await call_tool(api, "", key, tool, arguments, headers)
        results.append(resp.json())
        return "result" in results[-1]

    await until(answers, timeout=10, what=f"{tool} answered")
    return results[-1]["result"]


def has(service: str, name: str, trace_id: str) -> object:
    """A predicate: the receiver has a span of `service` called `name` in the trace."""
    full = f"switchboard-{service}"
    return lambda spans: any(
        s.service == full and s.name == name and s.trace_id == trace_id for s in spans
    )


async def test_a_tool_call_is_one_trace_from_the_gateway_to_the_upstream_and_the_audit(
    traced: Traced,
) -> None:
    seen: list[dict[str, str]] = []
    server = f"calc{secrets.token_hex(3)}"
    tool = f"{server}__add"
    async with (
        run_upstream(calculator(), seen=seen) as url,
        httpx.AsyncClient(base_url=traced.stack.url, timeout=10) as api,
    ):
        await register(api, traced.token, server, url)
        await wait_listed(api, "", traced.key, tool)
        result = await answered(api, traced.key, tool, {"a": 2, "b": 3})
    assert result["structuredContent"] == {"result": 5}

    posted = [h for h in seen if h.get("mcp-method") == "tools/call"]
    assert len(posted) == 1 and "traceparent" in posted[0]
    _, trace_id, upstream_parent, _ = posted[0]["traceparent"].split("-")

    receiver = traced.receiver
    await receiver.wait_for(has("audit", RECORD_SPAN, trace_id))
    await receiver.wait_for(has("gateway", "POST /mcp", trace_id))
    spans = receiver.in_trace(trace_id)
    http_span = one(spans, "gateway", "POST /mcp")
    request = one(spans, "gateway", f"tools/call {tool}")
    upstream = one(spans, "gateway", "tools/call add")
    record = one(spans, "audit", RECORD_SPAN)
    assert http_span.kind == "server" and http_span.attributes["http.route"] == "/mcp"
    assert request.kind == "server" and request.parent_id == http_span.span_id
    assert request.attributes["gen_ai.tool.name"] == tool
    assert upstream.kind == "client" and upstream.parent_id == request.span_id
    assert upstream.span_id == upstream_parent  # the upstream's parent is the gateway's call
    assert record.kind == "consumer" and record.parent_id == request.span_id
    assert record.attributes["messaging.system"] == "nats"


async def test_a_sandbox_hosted_call_shows_the_sandbox_s_span_in_the_trace(
    traced: Traced,
) -> None:
    name = f"stdio{secrets.token_hex(3)}"
    async with httpx.AsyncClient(base_url=traced.stack.url, timeout=30) as api:
        body = {"name": name, "transport": "stdio", "command": "python3", "args": [ECHO_SERVER]}
        resp = await api.post("/api/v1/servers", json=body, headers=bearer(traced.token))
        assert resp.status_code == 201, resp.text
        tool = f"{name}__echo"
        answered: list[str] = []  # the trace of the call that answered

        async def answers() -> bool:
            # the sandbox discovers the server's tools when a call first starts its process
            trace_id = secrets.token_hex(16)
            client = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
            resp = await call_tool(api, "", traced.key, tool, {"text": "hi"}, client)
            if "result" in resp.json():
                answered.append(trace_id)
            return bool(answered)

        await until(answers, timeout=30, what=f"{tool} answered")
    (trace_id,) = answered
    await traced.receiver.wait_for(has("sandbox", "rpc.sandbox.call process", trace_id))
    await traced.receiver.wait_for(has("gateway", "tools/call echo", trace_id))
    in_trace = traced.receiver.in_trace(trace_id)
    upstream = one(in_trace, "gateway", "tools/call echo")
    sandbox = one(in_trace, "sandbox", "rpc.sandbox.call process")
    assert upstream.attributes["network.transport"] == "pipe"
    assert sandbox.kind == "server" and sandbox.parent_id == upstream.span_id


async def test_the_default_stack_sends_upstreams_no_traceparent(e2e_stack: SecuredStack) -> None:
    seen: list[dict[str, str]] = []
    server = f"calc{secrets.token_hex(3)}"
    tool = f"{server}__add"
    async with (
        run_upstream(calculator(), seen=seen) as url,
        httpx.AsyncClient(base_url=e2e_stack.url, timeout=10) as api,
    ):
        token = await admin_token(api)
        key = await api_key(api, token)
        await register(api, token, server, url)
        await wait_listed(api, "", key, tool)
        client_trace = {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"}
        result = await answered(api, key, tool, {"a": 1, "b": 1}, client_trace)
    assert result["structuredContent"] == {"result": 2}
    assert [h for h in seen if h.get("mcp-method") == "tools/call"]
    assert not [h for h in seen if "traceparent" in h]
