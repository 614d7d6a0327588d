"""MCP over HTTP through nginx, both generations, as raw JSON-RPC.

Requests, answers read from JSON or SSE bodies, and a verdict on each answer (a result, a clean
JSON-RPC error, or not)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from tests.acceptance.rest import Admin, expect
from tests.e2e.gateway_support import list_tools, tool_names
from tests.support.sse import events_of

SESSION_REVISION = "2025-11-25"
CLIENT_INFO = {"name": "acceptance", "version": "1"}


async def register_http(
    api: httpx.AsyncClient, admin: Admin, name: str, url: str, org: str | None = None
) -> dict:
    """Register a Streamable HTTP upstream (the registry discovers its tools before answering).

    `org`: the org (id) that owns it; the platform's without."""
    body = {"name": name, "transport": "streamable-http", "url": url}
    if org is not None:
        body["org"] = org
    resp = await api.post("/api/v1/servers", json=body, headers=admin.headers)
    return expect(resp, 201, f"registry: register the Streamable HTTP server {name!r}")


async def wait_routed(
    api: httpx.AsyncClient, credential: str, tool: str, wait_s: float = 15
) -> None:
    """Poll tools/list through nginx until the gateway lists `tool`; fail naming it."""
    try:
        async with asyncio.timeout(wait_s):
            while tool not in tool_names(resp := await list_tools(api, "", credential)):
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(
            f"gateway: {tool} not listed by tools/list within {wait_s:.0f}s; "
            f"last answer {resp.status_code}: {resp.text[:600]}"
        ) from None


def traceparent(trace: str) -> dict[str, str]:
    """A W3C traceparent header naming `trace` (the audit record keeps it as its trace id)."""
    return {"traceparent": f"00-{trace}-{secrets.token_hex(8)}-01"}


def message(resp: httpx.Response, rid: Any = None) -> dict[str, Any] | None:
    """The JSON-RPC message answering request `rid` (any answer when None) from a JSON or SSE body.

    None when the body holds none."""
    kind = resp.headers.get("content-type", "")
    try:
        if kind.startswith("text/event-stream"):
            found = None
            for event in events_of(resp.content):
                doc = orjson.loads(event.data) if event.data.strip() else None
                if isinstance(doc, dict) and "id" in doc and (rid is None or doc["id"] == rid):
                    found = doc
            return found
        doc = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def is_json_rpc_error(doc: dict[str, Any] | None) -> bool:
    """Whether `doc` is a JSON-RPC 2.0 error response with an integer code and a message."""
    if not doc or doc.get("jsonrpc") != "2.0" or "result" in doc:
        return False
    error = doc.get("error")
    return (
        isinstance(error, dict)
        and isinstance(error.get("code"), int)
        and isinstance(error.get("message"), str)
    )


@dataclass
class LegacySession:
    """A session-based (2025) MCP client over raw HTTP: initialize once, then calls."""

    http: httpx.AsyncClient
    credential: str
    session_id: str | None = None
    next_id: int = 1

    @property
    def headers(self) -> dict[str, str]:
        """Credential, Accept and (once initialized) the session id."""
        headers = {
            "Authorization": f"Bearer {self.credential}",
            "Accept": "application/json, text/event-stream",
        }
        if self.session_id is not None:
            headers["Mcp-Session-Id"] = self.session_id
            headers["MCP-Protocol-Version"] = SESSION_REVISION
        return headers

    async def request(
        self, method: str, params: dict[str, Any], extra: dict[str, str] | None = None
    ) -> tuple[int, httpx.Response]:
        """POST one request on the session; return its id and the answer."""
        rid = self.next_id
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        resp = await self.http.post("/mcp", json=body, headers={**self.headers, **(extra or {})})
        return rid, resp

    async def initialize(self, extra: dict[str, str] | None = None) -> tuple[int, httpx.Response]:
        """POST initialize; return its id and the answer (see `initialized`)."""
        params = {
            "protocolVersion": SESSION_REVISION,
            "capabilities": {},
            "clientInfo": CLIENT_INFO,
        }
        return await self.request("initialize", params, extra)

    async def initialized(self, answer: httpx.Response) -> None:
        """Adopt the session id of a successful initialize; send notifications/initialized."""
        self.session_id = answer.headers["mcp-session-id"]
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await self.http.post("/mcp", json=note, headers=self.headers)

    async def call(
        self, tool: str, arguments: dict[str, Any], extra: dict[str, str] | None = None
    ) -> tuple[int, httpx.Response]:
        """tools/call on the session."""
        return await self.request("tools/call", {"name": tool, "arguments": arguments}, extra)
