"""The server-logs channel (core NATS live.sandbox.logs.<server>) and the monitoring push."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import orjson
import pytest

from libs.common import bus as busmod
from libs.common.events import TOOL_CALLED, ToolCalled
from libs.devstack.harness import until
from tests.integration.audit import registry_events
from tests.integration.audit.conftest import People
from tests.integration.audit.test_live import connect, receive


async def log_line(publisher: busmod.Bus, server: str, payload: bytes) -> None:
    """Publish a hosted process's log line as the sandbox does (core NATS, not stored)."""
    await publisher.nc.publish(publisher.subject(f"live.sandbox.logs.{server}"), payload)
    await publisher.nc.flush()


async def wait_owned(audit_url: str, admin: str, server: str) -> None:
    """Wait until audit knows whose `server` is (its registry.server.created event)."""
    async with httpx.AsyncClient(base_url=audit_url) as http:

        async def owned() -> int:
            found = await http.get(
                "/api/v1/activity",
                params={"target": server},
                headers={"Authorization": f"Bearer {admin}"},
            )
            return found.json()["total"]

        await until(owned, timeout=5, what=f"audit to know whose {server} is")


async def test_server_logs_reach_only_readers_of_the_server_and_honour_the_filter(
    audit_url: str, publisher: busmod.Bus, people: People
) -> None:
    auth = people.auth
    granted, other = f"logs-{uuid.uuid4().hex[:6]}", f"logs-{uuid.uuid4().hex[:6]}"
    team = await auth.create_team(people.org_a["slug"])
    reader = await auth.create_user()
    await auth.add_member(team["name"], reader, "member")
    await auth.server(people.org_a["id"], granted)
    await auth.grant(team["name"], granted, ["read"])
    await wait_owned(audit_url, people.admin, granted)
    reader_token = (await auth.login(reader.username, reader.password))["access_token"]
    dave = await connect(audit_url, reader_token, "server-logs")
    bob = await connect(audit_url, people.bob.token, "server-logs")  # no grant on either
    admin = await connect(audit_url, people.admin)
    try:
        sub = {"type": "subscribe", "channel": "server-logs", "filters": {"server": other}}
        await admin.send(orjson.dumps(sub).decode())
        await receive(admin, "subscribed")
        await log_line(publisher, other, b'{"line": "from other", "stream": "stderr"}')
        await log_line(publisher, granted, b"plain text line")
        got = await receive(dave, "server-logs")
        assert got["data"] == {"server": granted, "line": "plain text line"}
        seen = await receive(admin, "server-logs")
        assert seen["data"] == {"server": other, "line": "from other", "stream": "stderr"}
        # both lines were relayed by now (dave got the second): bob's next message is his pong
        await bob.send('{"type":"ping","id":1}')
        async with asyncio.timeout(2):
            assert orjson.loads(await bob.recv())["type"] == "pong"
    finally:
        for ws in (dave, bob, admin):
            await ws.close()


@pytest.mark.usefixtures("clean")
async def test_monitoring_pushes_the_server_counts_and_recent_performance(
    audit_url: str, publisher: busmod.Bus, people: People
) -> None:
    ws = await connect(audit_url, people.admin, "monitoring")
    try:
        base = uuid.uuid4().hex[:6]
        for name, status in (("a", "healthy"), ("b", "healthy"), ("c", "unhealthy")):
            await publisher.publish(registry_events.server_status(f"mon-{base}-{name}", status))
        for status, latency in (("ok", 10.0), ("ok", 20.0), ("ok", 30.0), ("error", 40.0)):
            payload = ToolCalled(server=f"mon-{base}-a", tool="t", status=status,
                                 latency_ms=latency)  # fmt: skip
            await publisher.publish(TOOL_CALLED.event(payload, source="gateway"))
        want_servers = {"total": 3, "healthy": 2, "unhealthy": 1,
                        "by_status": {"healthy": 2, "unhealthy": 1}}  # fmt: skip
        async with asyncio.timeout(10):
            while True:
                msg = await receive(ws, "monitoring", 10)
                perf = msg["data"]["performance"]
                if msg["data"]["servers"] == want_servers and perf["requests"] == 4:
                    break
        assert perf["error_rate"] == 0.25
        assert perf["avg_latency_ms"] == 25.0
        assert perf["requests_per_minute"] == 0.8
    finally:
        await ws.close()
