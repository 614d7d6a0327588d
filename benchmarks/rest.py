"""The whole-stack benchmark's setup through nginx as a user does it: REST as the admin, MCP."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiohttp
import orjson

from benchmarks.load import CLIENT_INFO, MODERN, SESSION_REVISION, body, headers
from libs.devstack.launch import AdminLogin

TOOLS_PER_SERVER = 50  # benchmarks/upstream.py's
REGISTERING = 8  # concurrent registrations (one at a time, 100 servers took 2 minutes)


class SetupFailed(RuntimeError):
    """A setup request was refused; the message shows the answer."""


async def expect(resp: aiohttp.ClientResponse, status: int, what: str) -> Any:
    """The JSON body of `resp`, after checking its status."""
    text = await resp.text()
    if resp.status != status:
        raise SetupFailed(f"{what}: answered {resp.status}, expected {status}: {text[:500]}")
    return orjson.loads(text) if text else None


async def admin_key(http: aiohttp.ClientSession, base: str, admin: AdminLogin) -> tuple[str, str]:
    """Sign in as the admin `make run` created; return its JWT and a new API key."""
    login = {"username": admin.user, "password": admin.password}
    async with http.post(f"{base}/api/v1/auth/login", json=login) as resp:
        token = (await expect(resp, 200, "sign in as the admin"))["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    key = {"name": f"bench-{secrets.token_hex(3)}"}
    async with http.post(f"{base}/api/v1/keys", json=key, headers=auth) as resp:
        return token, (await expect(resp, 201, "create an API key"))["key"]


async def register(
    http: aiohttp.ClientSession, base: str, token: str, names: list[str], url: str
) -> None:
    """Register the upstream at `url` under each name, REGISTERING at a time.

    Each POST answers once the registry has discovered the server's tools."""
    auth = {"Authorization": f"Bearer {token}"}
    slots = asyncio.Semaphore(REGISTERING)

    async def one(name: str) -> None:
        server = {"name": name, "transport": "streamable-http", "url": url}
        async with slots, http.post(f"{base}/api/v1/servers", json=server, headers=auth) as resp:
            await expect(resp, 201, f"register the upstream as {name!r}")

    await asyncio.gather(*(one(name) for name in names))


async def listed_tools(http: aiohttp.ClientSession, mcp: str, key: str) -> int:
    """How many tools a stateless tools/list lists, every page."""
    count, cursor = 0, None
    while True:
        params = {"cursor": cursor} if cursor else {}
        hdrs = headers("tools/list", None, key)
        async with http.post(mcp, data=body("tools/list", params), headers=hdrs) as resp:
            result = (await expect(resp, 200, "tools/list")).get("result", {})
        count += len(result.get("tools", []))
        cursor = result.get("nextCursor")
        if not cursor:
            return count


async def wait_listed(http: aiohttp.ClientSession, mcp: str, key: str, want: int) -> None:
    """Wait (60 s at most) until the gateway lists `want` tools."""
    try:
        async with asyncio.timeout(60):
            while (got := await listed_tools(http, mcp, key)) < want:
                print(f"waiting for the routing table: {got} of {want} tools", flush=True)
                await asyncio.sleep(0.5)
    except TimeoutError:
        raise SetupFailed(f"the gateway did not list {want} tools within 60 s") from None


async def open_session(http: aiohttp.ClientSession, mcp: str, key: str) -> str:
    """Initialize a 2025-11-25 session (and say initialized); return its Mcp-Session-Id."""
    init = {"protocolVersion": SESSION_REVISION, "capabilities": {}, "clientInfo": CLIENT_INFO}
    hdrs = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    payload = body("initialize", init, SESSION_REVISION)
    async with http.post(mcp, data=payload, headers=hdrs) as resp:
        await expect(resp, 200, f"initialize a {SESSION_REVISION} session")
        session = resp.headers.get("Mcp-Session-Id")
    if not session:
        raise SetupFailed("initialize answered without an Mcp-Session-Id")
    hdrs = {**hdrs, "Mcp-Session-Id": session, "MCP-Protocol-Version": SESSION_REVISION}
    note = orjson.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
    async with http.post(mcp, data=note, headers=hdrs) as resp:
        await expect(resp, 202, "notifications/initialized")
    return session


def call_headers(revision: str, tool: str, key: str | None, session: str | None) -> dict:
    """The headers of a tools/call of `revision`, with the session's id when there is one."""
    hdrs = headers("tools/call", tool, key, revision)
    if session is not None:
        hdrs["Mcp-Session-Id"] = session
    return hdrs


GENERATIONS = {MODERN: "stateless", SESSION_REVISION: "session"}
