"""An upstream's malformed JSON-RPC answer is a clean JSON-RPC error for the client, never a 500.

A well-formed one is relayed as it is, with HTTP 200 whatever its code."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.gateway.conftest import Stack, bearer, modern_body, modern_headers, register
from tests.integration.gateway.hostile_upstreams import Hostile, error_answer, result_answer
from tests.support import serving
from tests.support.mcp_messages import initialize

MALFORMED = {
    "text_code": error_answer({"code": "boom", "message": "x"}),
    "float_code": error_answer({"code": -32000.5, "message": "x"}),
    "bool_code": error_answer({"code": True, "message": "x"}),
    "huge_code": error_answer({"code": 10**15, "message": "x"}),
    "no_code": error_answer({"message": "x"}),
    "list_message": error_answer({"code": -32000, "message": ["x"]}),
    "text_error": error_answer("oops"),
    "null_error": error_answer(None),
    "list_result": result_answer([1, 2]),
    "text_result": result_answer("done"),
}
WELL_FORMED = {
    "own_error": error_answer({"code": -32050, "message": "no such row", "data": {"row": 7}}),
    "auth_error": error_answer({"code": -32001, "message": "the upstream's own auth"}),
}
INIT = initialize()


async def _calls(http: httpx.AsyncClient, url: str, name: str) -> list[httpx.Response]:
    """The tool called as a 2026-07-28 client and in a 2025-11-25 session."""
    params = {"name": f"odd__{name}", "arguments": {}}
    modern = await http.post(
        url,
        json=modern_body("tools/call", params),
        headers=modern_headers("tools/call", params["name"]),
    )
    sid = (await http.post(url, json=INIT)).headers["mcp-session-id"]
    legacy = await http.post(
        url,
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params},
        headers={"Mcp-Session-Id": sid},
    )
    return [modern, legacy]


async def test_malformed_errors_and_results_become_32010_not_500(registry: Any, stack: Stack):
    hostile = Hostile({**MALFORMED, **WELL_FORMED})
    async with serving(hostile) as base, httpx.AsyncClient(headers=bearer(stack.admin)) as http:
        await register(registry, "odd", f"{base}/mcp")
        await stack.wait_for_tool(http, "odd__text_code")
        url = f"{stack.url}/mcp"
        for name in MALFORMED:
            for resp in await _calls(http, url, name):
                assert resp.status_code == 200, (name, resp.text)
                assert resp.json()["error"]["code"] == -32010, name
        for resp in await _calls(http, url, "own_error"):
            assert resp.status_code == 200
            assert resp.json()["error"] == {
                "code": -32050, "message": "no such row", "data": {"row": 7}}  # fmt: skip
        for resp in await _calls(http, url, "auth_error"):
            # the upstream's word about its own call, not about the client's credential
            assert resp.status_code == 200 and "www-authenticate" not in resp.headers
            assert resp.json()["error"]["code"] == -32001
    assert set(hostile.calls) == set(MALFORMED) | set(WELL_FORMED)
