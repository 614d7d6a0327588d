"""The audit trail through nginx: the tool-call records of a server.

They are read once the audit service has caught up with the event stream."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from tests.acceptance.rest import Admin


async def consumer_state(api: httpx.AsyncClient, admin: Admin) -> dict[str, Any] | str:
    """The audit consumer's lag (`pending`, `ack_pending`) from health/detail, or the answer."""
    resp = await api.get("/api/v1/health/detail", headers=admin.headers)
    consumer = resp.json().get("consumer") if resp.status_code == 200 else None
    return consumer if isinstance(consumer, dict) else f"{resp.status_code} {resp.text[:300]}"


def idle(state: dict[str, Any] | str) -> bool:
    """Whether the consumer has nothing pending and nothing unacknowledged."""
    return isinstance(state, dict) and state.get("pending") == 0 and state.get("ack_pending") == 0


async def caught_up(api: httpx.AsyncClient, admin: Admin, wait_s: float = 60) -> None:
    """Wait until the audit consumer is idle: every event in the stream has been stored."""
    state: dict[str, Any] | str = ""
    try:
        async with asyncio.timeout(wait_s):
            while not idle(state := await consumer_state(api, admin)):
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(
            f"audit: the consumer did not catch up within {wait_s:.0f}s: {state}"
        ) from None


async def calls_of(api: httpx.AsyncClient, admin: Admin, server: str) -> list[dict[str, Any]]:
    """Every tool-call record of `server` (the NDJSON export)."""
    resp = await api.get(
        "/api/v1/audit/calls/export",
        params={"format": "ndjson", "server": server},
        headers=admin.headers,
    )
    assert resp.status_code == 200, f"audit: export the call records: {resp.text[:600]}"
    return [orjson.loads(line) for line in resp.content.splitlines() if line.strip()]


async def by_trace(
    api: httpx.AsyncClient, admin: Admin, server: str, traces: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """The records of `server` carrying each of `traces`."""
    found: dict[str, list[dict[str, Any]]] = {t: [] for t in traces}
    for record in await calls_of(api, admin, server):
        if record.get("trace_id") in found:
            found[record["trace_id"]].append(record)
    return found


async def records_by_trace(
    api: httpx.AsyncClient, admin: Admin, server: str, traces: set[str], wait_s: float = 60
) -> dict[str, list[dict[str, Any]]]:
    """The records of `server` for each trace id once the consumer is idle.

    Idle means every event in the stream stored, redeliveries included, so a missing record is
    lost and a duplicate shows."""
    try:
        async with asyncio.timeout(wait_s):
            while not all((await by_trace(api, admin, server, traces)).values()):
                if idle(await consumer_state(api, admin)):
                    break
                await asyncio.sleep(0.3)
    except TimeoutError:
        raise AssertionError(
            f"audit: neither every record stored nor the consumer idle within {wait_s:.0f}s: "
            f"{await consumer_state(api, admin)}"
        ) from None
    await caught_up(api, admin)
    return await by_trace(api, admin, server, traces)
