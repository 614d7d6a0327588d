"""Audit on the booted platform: a call through /mcp leaves one record and a /ws/events message."""

from __future__ import annotations

import asyncio
import secrets

import httpx
import orjson
import websockets

from tests.acceptance.audit_trail import records_by_trace
from tests.acceptance.platform_boot import Platform
from tests.acceptance.rest import Admin
from tests.acceptance.wire import message, traceparent
from tests.e2e.gateway_support import call_tool


async def next_message(ws: websockets.ClientConnection, kind: str, wait_s: float = 10) -> dict:
    """The next /ws/events message of type or channel `kind` (others skipped)."""
    async with asyncio.timeout(wait_s):
        while True:
            doc = orjson.loads(await ws.recv())
            if kind in (doc.get("type"), doc.get("channel")):
                return doc


async def test_a_call_through_mcp_leaves_one_audit_record_and_a_live_event(
    platform: Platform, api: httpx.AsyncClient, admin: Admin, weather: str
) -> None:
    trace = secrets.token_hex(16)
    try:
        connection = await websockets.connect(
            platform.url.replace("http://", "ws://") + "/ws/events"
        )
    except (OSError, websockets.exceptions.WebSocketException) as exc:
        raise AssertionError(
            f"audit: /ws/events accepts a client: {exc!r}; {platform.logs()}"
        ) from None
    async with connection as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": admin.token}).decode())
        await next_message(ws, "authenticated")
        subscribe = {"type": "subscribe", "channel": "tool-calls", "filters": {"server": weather}}
        await ws.send(orjson.dumps(subscribe).decode())
        await next_message(ws, "subscribed")
        resp = await call_tool(
            api, "", admin.key, f"{weather}__temperature", {"city": "Bergen"}, traceparent(trace)
        )
        answer = message(resp) or {}
        assert "result" in answer, f"audit: the call succeeded: {resp.status_code} {resp.text}"
        try:
            live = await next_message(ws, "tool-calls")
        except TimeoutError:
            raise AssertionError("audit: /ws/events relays the call within 10 s") from None
    records = (await records_by_trace(api, admin, weather, {trace}))[trace]
    assert len(records) == 1, f"audit: exactly one record of the call: {records}"
    record = records[0]
    assert (record["tool"], record["status"], record["endpoint"]) == (
        "temperature",
        "ok",
        "/mcp",
    ), f"audit: the record describes the call: {record}"
    assert live["data"]["id"] == record["id"], (
        f"audit: the live event is the recorded call: {live['data']} vs {record}"
    )
    assert live["data"]["arguments"] == record["arguments"] == {"city": "[redacted]"}, (
        "audit: a live event shows the arguments as the record keeps them (policy keys): "
        f"{live['data'].get('arguments')} vs {record.get('arguments')}"
    )
