"""The audit trail through nginx: the tool-call records of a server, once the audit service has
caught up with the event stream."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from tests.acceptance.rest import Admin, expect


async def caught_up(api: httpx.AsyncClient, admin: Admin, wait_s: float = 60) -> None:
    """Wait until the audit consumer has nothing pending or unacknowledged (health/detail)."""
    detail: Any = None
    try:
        async with asyncio.timeout(wait_s):
            while True:
                resp = await api.get("/api/v1/health/detail", headers=admin.headers)
                detail = resp.json() if resp.status_code == 200 else resp.text[:300]
                consumer = detail.get("consumer") if isinstance(detail, dict) else None
                if consumer and consumer["pending"] == 0 and consumer["ack_pending"] == 0:
                    return
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(
            f"audit: the consumer did not catch up within {wait_s:.0f}s: {detail}"
        ) from None


async def calls_of(api: httpx.AsyncClient, admin: Admin, server: str) -> list[dict[str, Any]]:
    """Every tool-call record of `server` (the NDJSON export)."""
    resp = await api.get(
        "/api/v1/audit/calls/export",
        params={"format": "ndjson", "server": server},
        headers=admin.headers,
    )
    expect(resp, 200, "audit: export the call records")
    return [orjson.loads(line) for line in resp.content.splitlines() if line.strip()]


async def records_by_trace(
    api: httpx.AsyncClient, admin: Admin, server: str, traces: set[str], wait_s: float = 60
) -> dict[str, list[dict[str, Any]]]:
    """The records of `server` for each trace id, once every trace has one (or `wait_s` passed)
    and the consumer is idle, so a duplicate would have been stored too."""
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        async with asyncio.timeout(wait_s):
            while True:
                found = {t: [] for t in traces}
                for record in await calls_of(api, admin, server):
                    if record.get("trace_id") in found:
                        found[record["trace_id"]].append(record)
                if all(found.values()):
                    break
                await asyncio.sleep(0.3)
    except TimeoutError:
        return found
    await caught_up(api, admin)
    found = {t: [] for t in traces}
    for record in await calls_of(api, admin, server):
        if record.get("trace_id") in found:
            found[record["trace_id"]].append(record)
    return found
