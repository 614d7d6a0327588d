"""Junk params on every method, in both generations, on `/mcp` and on a server view.

The answer is a JSON-RPC error or a result, never a 5xx, and the gateway stays healthy."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from services.gateway.metrics import _METHODS
from tests.integration.gateway.conftest import bearer, modern_body, modern_headers, register
from tests.integration.gateway.upstreams import rich
from tests.integration.registry.conftest import run_upstream
from tests.support.mcp_messages import initialize
from tests.support.sse import messages

JUNK: list[Any] = [
    {},
    {"name": 5, "uri": 7, "taskId": 9, "cursor": 11, "ref": "x", "argument": [], "level": {}},
    {"name": "", "uri": "", "taskId": "", "cursor": ""},
    {"name": "nope__nope", "uri": "switchboard://nope/x", "taskId": "a/b/c", "cursor": "zz"},
    {"uri": "switchboard://", "taskId": "//", "task": "soon", "arguments": "not a dict"},
    {"notifications": 5, "ref": {"type": "ref/prompt"}, "argument": {"name": 1}},
    {"notifications": {"resourceSubscriptions": [1, None], "taskIds": {}}, "task": {"ttl": "x"}},
    {"_meta": "not a dict", "requestState": 5, "inputResponses": []},
]
METHODS = sorted(_METHODS - {"initialize"}) + ["tasks/update", "no/such/method"]


async def session(http: httpx.AsyncClient, url: str, token: str) -> dict[str, str]:
    """A 2025-11-25 session's headers."""
    body = initialize({"name": "junk"})
    headers = {**bearer(token), "Accept": "application/json, text/event-stream"}
    resp = await http.post(url, json=body, headers=headers)
    headers["Mcp-Session-Id"] = resp.headers["mcp-session-id"]
    headers["MCP-Protocol-Version"] = "2025-11-25"
    return headers


def errors_of(resp: httpx.Response) -> list[dict[str, Any]]:
    """The JSON-RPC errors in a JSON or SSE answer."""
    if resp.headers.get("content-type", "").startswith("text/event-stream"):
        docs = messages(resp.content)
    else:
        docs = [resp.json()] if resp.content else []
    return [d["error"] for d in docs if isinstance(d, dict) and "error" in d]


@pytest.mark.parametrize("view", ["/mcp", "/mcp/servers/junky"])
@pytest.mark.parametrize("generation", ["2026-07-28", "2025-11-25"])
async def test_junk_params_never_make_an_internal_error(registry, stack, generation, view) -> None:
    url = f"{stack.url}{view}"
    async with (
        run_upstream(rich("junky")) as upstream,
        httpx.AsyncClient(timeout=10) as http,
    ):
        await register(registry, "junky", upstream)
        await stack.wait_for_tool(http, "junky__touch")
        legacy = await session(http, url, stack.admin) if generation != "2026-07-28" else None
        seen = []
        for method in METHODS:
            for i, params in enumerate(JUNK):
                if legacy is None:
                    body = modern_body(method, {k: v for k, v in params.items() if k != "_meta"})
                    if "_meta" in params:
                        body["params"]["_meta"] = params["_meta"]
                    headers = {**modern_headers(method), **bearer(stack.admin)}
                else:
                    body = {"jsonrpc": "2.0", "id": i + 2, "method": method, "params": params}
                    headers = legacy
                if method == "subscriptions/listen":
                    headers = {**headers, "Accept": "application/json"}  # no stream to hang on
                resp = await http.post(url, json=body, headers=headers)
                seen.append((method, i, resp.status_code, errors_of(resp)))
        healthy = await http.get(f"{stack.url}/healthz")
    # the gateway itself never answers -32603; on a server view it relays the upstream's own
    # errors as they are, and the SDK upstream answers some junk (an empty prompt name) so
    internal_ok = view != "/mcp"
    broken = [
        s
        for s in seen
        if s[2] >= 500 or (not internal_ok and any(e.get("code") == -32603 for e in s[3]))
    ]
    assert broken == []
    assert healthy.status_code == 200


async def test_junk_bodies_on_the_admin_routes_are_4xx(registry, stack) -> None:
    bodies: list[Any] = [
        None,
        [],
        "text",
        {},
        {"tool_name": 5},
        {"tool_name": "add", "arguments": "x"},
        {"tool_name": "nope", "arguments": {}},
        {"tool_name": "add", "arguments": {"a": "one"}, "extra": True},
    ]
    async with (
        run_upstream(rich("junky")) as upstream,
        httpx.AsyncClient(timeout=10, headers=bearer(stack.admin)) as http,
    ):
        await register(registry, "junky", upstream)
        await stack.wait_for_tool(http, "junky__touch")
        answers = []
        for name in ("junky", "no-such-server", "bad name!"):
            for body in bodies:
                for route in ("call-tool", "test"):
                    resp = await http.post(
                        f"{stack.url}/api/v1/servers/{name}/{route}",
                        content=b"{" if body == "text" else orjson.dumps(body),
                        headers={"Content-Type": "application/json"},
                    )
                    answers.append((name, route, body, resp.status_code, resp.json()))
    assert [a for a in answers if a[3] >= 500] == []
    assert all("error" in a[4] or a[3] == 200 for a in answers)
