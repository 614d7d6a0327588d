"""Every MCP endpoint authenticates before it does or says anything.

Notifications, client replies and malformed bodies included, in both generations and on the
HTTP+SSE transport."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.integration.gateway.conftest import Stack, bearer, modern_body, modern_headers, register
from tests.integration.gateway.upstreams import Hangs, rich
from tests.support.mcp_messages import initialize
from tests.support.upstreams import run_upstream

INIT = initialize()
CANCEL = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
REPLY = {"jsonrpc": "2.0", "id": "sb-1", "result": {}}
BODIES: list[tuple[str, Any, dict[str, str]]] = [
    ("legacy request", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {}),
    ("initialize", INIT, {}),
    ("modern request", modern_body("tools/list", {}), modern_headers("tools/list")),
    ("cancellation", CANCEL, {"Mcp-Session-Id": "x.0"}),
    ("modern notification", CANCEL, {"MCP-Protocol-Version": "2026-07-28"}),
    ("initialized", INITIALIZED, {}),
    ("client reply", REPLY, {"Mcp-Session-Id": "x.0"}),
    ("not json", b"{nope", {}),
    ("wrong content type", b"{}", {"Content-Type": "text/plain"}),
]
PATHS = ["/mcp", "/mcp/team-a", "/mcp/servers/anything"]
SSE_PATHS = ["/sse", "/mcp/team-a/sse", "/mcp/servers/anything/sse"]


def _post(http: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str]) -> Any:
    """POST JSON (or raw bytes) with extra headers."""
    if isinstance(body, bytes):
        kind = {"Content-Type": "application/json", **headers}
        return http.post(url, content=body, headers=kind)
    return http.post(url, json=body, headers=headers)


@pytest.mark.parametrize("credential", ["none", "forged"])
async def test_every_mcp_endpoint_answers_401_first_whatever_the_message(
    stack: Stack, credential: str
) -> None:
    auth = {} if credential == "none" else bearer("sbk_" + "x" * 40)
    async with httpx.AsyncClient(base_url=stack.url, headers=auth) as http:
        answers: list[tuple[str, httpx.Response]] = []
        for path in PATHS:
            for label, body, headers in BODIES:
                answers.append((f"POST {path} {label}", await _post(http, path, body, headers)))
            answers.append((f"GET {path}", await http.get(path, headers={"Mcp-Session-Id": "x"})))
            answers.append((f"DELETE {path}", await http.delete(path)))
        for path in SSE_PATHS:
            answers.append((f"GET {path}", await http.get(path)))
            messages = path.removesuffix("sse") + "messages?session_id=x.0"
            for label, body, headers in BODIES:
                answers.append(
                    (f"POST {messages} {label}", await _post(http, messages, body, headers))
                )
    wrong = {what: resp.status_code for what, resp in answers if resp.status_code != 401}
    assert wrong == {}
    for what, resp in answers:
        assert resp.json()["error"]["code"] == -32001, what
        assert "resource_metadata=" in resp.headers.get("www-authenticate", ""), what


async def test_a_cancellation_for_another_principal_s_session_is_404_and_cancels_nothing(
    registry: Any, stack: Stack
) -> None:
    hangs = Hangs()
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "slow__hang", "arguments": {"tag": "mine"}}}  # fmt: skip
    other = await stack.auth.create_user()
    async with (
        run_upstream(rich("slowpoke", hangs)) as url,
        httpx.AsyncClient(base_url=stack.url, headers=bearer(stack.admin), timeout=10) as http,
    ):
        await register(registry, "slow", url)
        await stack.wait_for_tool(http, "slow__hang")
        sid = (await http.post("/mcp", json=INIT)).headers["mcp-session-id"]
        mine = {"Mcp-Session-Id": sid}
        pending = asyncio.ensure_future(http.post("/mcp", json=call, headers=mine))
        await hangs.wait(hangs.started, "mine")
        foreign = await http.post(
            "/mcp", json=CANCEL, headers={**mine, "Authorization": f"Bearer {other.token}"}
        )
        running = not pending.done() and "mine" not in hangs.cancelled
        own = await http.post("/mcp", json=CANCEL, headers=mine)
        answer = await pending
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == -32004
    assert running
    assert own.status_code == 202 and answer.json()["error"]["code"] == -32800
