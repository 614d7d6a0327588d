"""Two sandbox replicas: one owns each server's process; the other forwards to it; takeover."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from libs.common import rpc
from libs.common.bus import Bus
from services.sandbox.app import create_app as create_sandbox
from tests.integration.sandbox.conftest import (
    EventTap,
    register_stdio,
    sandbox_settings,
    unique_name,
)
from tests.integration.sandbox.test_hosted_servers import call_msg, structured
from tests.support import serving


@asynccontextmanager
async def replica(pg_url: str, nats_url: str, namespace: str, instance: str) -> AsyncIterator[Any]:
    """One sandbox replica in-process, with its own instance id and work root."""
    settings = sandbox_settings(
        pg_url,
        nats_url,
        namespace,
        SWITCHBOARD_INSTANCE=instance,
        SANDBOX_OWNER_TTL_S="3",
        SANDBOX_IDLE_TIMEOUT_S="60",
    )
    app = create_sandbox(settings)
    try:
        async with serving(app) as url:
            app.url = url  # type: ignore[attr-defined]
            yield app
    finally:
        shutil.rmtree(settings.work_root, ignore_errors=True)


def subject(instance: str, verb: str) -> str:
    """The subject a given replica answers `verb` on."""
    return f"{rpc.SANDBOX_REPLICA}.{instance}.{verb}"


async def call_via(bus: Bus, instance: str, server: str, tool: str, args: dict, rid: Any) -> dict:
    """rpc.sandbox.call delivered to one chosen replica."""
    data = {"server": server, "message": call_msg(tool, args, rid)}
    reply = await bus.request(subject(instance, "call"), data, timeout=30)
    return reply["message"]


async def release(url: str, admin: dict[str, str], name: str) -> None:
    """Stop the server wherever registration's discovery started it (its lease is released)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as api:
        resp = await api.post(f"/api/v1/sandbox/servers/{name}/stop", headers=admin, json={})
    assert resp.status_code == 200


def holders(apps: list[Any], name: str) -> list[str]:
    """Instances on which a process of `name` runs."""
    return [
        app.state.runtime.instance
        for app in apps
        if name in app.state.runtime.manager.processes
        and app.state.runtime.manager.processes[name].state == "running"
    ]


async def test_two_replicas_share_one_process_and_the_non_owner_acts_on_the_owners_process(
    pg_url: str,
    nats_url: str,
    namespace: str,
    auth: Any,
    registry: str,
    sandbox: Any,
    reg_api: httpx.AsyncClient,
    admin: dict[str, str],
    bus: Bus,
) -> None:
    name = unique_name("replicated")
    await register_stdio(reg_api, admin, name)
    a_id, b_id = f"sbx-a-{secrets.token_hex(2)}", f"sbx-b-{secrets.token_hex(2)}"
    async with (
        replica(pg_url, nats_url, namespace, a_id) as a,
        replica(pg_url, nats_url, namespace, b_id) as b,
    ):
        await release(a.url, admin, name)  # the session's sandbox may have run the discovery
        replies = await asyncio.gather(
            *(
                call_via(bus, (a_id, b_id)[i % 2], name, "add", {"a": i, "b": 1}, i)
                for i in range(20)
            )
        )
        assert [structured(r) for r in replies] == [i + 1 for i in range(20)]
        assert [r["id"] for r in replies] == list(range(20))
        owners = holders([a, b], name)
        assert len(owners) == 1
        assert holders([sandbox], name) == []
        owner, other = (a, b) if owners == [a_id] else (b, a)
        assert name not in other.state.runtime.manager.processes
        pid = owner.state.runtime.manager.processes[name].pid

        async with httpx.AsyncClient(base_url=other.url, timeout=30) as api:
            status = await api.get(f"/api/v1/sandbox/servers/{name}/status", headers=admin)
            assert status.status_code == 200
            assert status.json()["running"] is True
            assert status.json()["owners"] == [owner.state.runtime.instance]
            assert status.json()["processes"][0]["pid"] == pid

            await call_via(bus, other.state.runtime.instance, name, "log", {"text": "via-b"}, 1)
            logs = await api.get(f"/api/v1/sandbox/servers/{name}/logs", headers=admin)
            assert logs.status_code == 200
            assert any(ln["message"] == "INFO via-b" for ln in logs.json()["items"])
            assert {ln["instance"] for ln in logs.json()["items"]} == {owner.state.runtime.instance}

            start = await api.post(f"/api/v1/sandbox/servers/{name}/start", headers=admin)
            assert start.status_code == 200
            assert start.json()["instance"] == owner.state.runtime.instance
            assert start.json()["pid"] == pid
            assert holders([a, b], name) == [owner.state.runtime.instance]

            stop = await api.post(f"/api/v1/sandbox/servers/{name}/stop", headers=admin, json={})
            assert stop.status_code == 200
            assert [p["state"] for p in stop.json()["processes"]] == ["stopped"]
            assert owner.state.runtime.manager.processes[name].state == "stopped"
            assert holders([a, b], name) == []

            # the stopped owner's log lines stay reachable from the other replica
            logs = await api.get(f"/api/v1/sandbox/servers/{name}/logs", headers=admin)
            assert logs.status_code == 200
            assert any(ln["message"] == "INFO via-b" for ln in logs.json()["items"])


async def test_a_stopped_process_row_outlives_the_reaper_while_its_replica_lives(
    pg_url: str,
    nats_url: str,
    namespace: str,
    auth: Any,
    registry: str,
    reg_api: httpx.AsyncClient,
    admin: dict[str, str],
    bus: Bus,
) -> None:
    """The row is how other replicas find the stopped owner's logs.

    A dead replica's ended rows go once nobody has touched them for a lease's lifetime."""
    name, stale = unique_name("ended"), unique_name("ended-stale")
    await register_stdio(reg_api, admin, name)
    a_id = f"sbx-a-{secrets.token_hex(2)}"
    conn = await asyncpg.connect(pg_url)
    try:
        async with replica(pg_url, nats_url, namespace, a_id) as a:
            await conn.execute(
                "INSERT INTO sandbox.processes (key, server, state, instance, updated_at)"
                " VALUES ($1, $1, 'stopped', 'sbx-dead', now() - interval '1 hour')",
                stale,
            )
            await release(a.url, admin, name)
            assert structured(await call_via(bus, a_id, name, "add", {"a": 1, "b": 1}, 1)) == 2
            await release(a.url, admin, name)  # stopped on a, its lease released
            await a.state.runtime.ownership.reap()
            rows = await conn.fetch(
                "SELECT key, instance, state FROM sandbox.processes WHERE key = ANY($1::text[])",
                [name, stale],
            )
            assert [tuple(r) for r in rows] == [(name, a_id, "stopped")]
            assert await a.state.runtime.ownership.holders(name) == {a_id}
    finally:
        await conn.close()


async def test_the_other_replica_takes_over_when_the_owner_stops(
    pg_url: str,
    nats_url: str,
    namespace: str,
    auth: Any,
    registry: str,
    reg_api: httpx.AsyncClient,
    admin: dict[str, str],
    bus: Bus,
) -> None:
    name = unique_name("takeover")
    await register_stdio(reg_api, admin, name)
    a_id, b_id = f"sbx-a-{secrets.token_hex(2)}", f"sbx-b-{secrets.token_hex(2)}"
    async with replica(pg_url, nats_url, namespace, b_id) as b:
        async with replica(pg_url, nats_url, namespace, a_id) as a:
            await release(a.url, admin, name)
            first = await call_via(bus, a_id, name, "add", {"a": 1, "b": 1}, 1)
            assert structured(first) == 2
            assert holders([a, b], name) == [a_id]
            via_b = await call_via(bus, b_id, name, "add", {"a": 2, "b": 2}, 2)
            assert structured(via_b) == 4
            assert holders([a, b], name) == [a_id]
        # A stopped: its process is gone and its lease released; B takes over on the next call
        again = await call_via(bus, b_id, name, "add", {"a": 3, "b": 3}, 3)
        assert structured(again) == 6
        assert holders([b], name) == [b_id]
        conn = await asyncpg.connect(pg_url)
        try:
            rows = await conn.fetch(
                "SELECT instance, state FROM sandbox.processes WHERE server = $1", name
            )
            owner = await conn.fetchval("SELECT instance FROM sandbox.owners WHERE key = $1", name)
        finally:
            await conn.close()
        assert [(r["instance"], r["state"]) for r in rows] == [(b_id, "running")]
        assert owner == b_id


async def test_an_expired_lease_of_a_dead_replica_is_taken_over_and_its_rows_reaped(
    pg_url: str,
    nats_url: str,
    namespace: str,
    auth: Any,
    registry: str,
    reg_api: httpx.AsyncClient,
    admin: dict[str, str],
    bus: Bus,
    events: EventTap,
) -> None:
    name, idle = unique_name("orphaned"), unique_name("orphaned-idle")
    await register_stdio(reg_api, admin, name)
    dead, b_id = f"sbx-dead-{secrets.token_hex(2)}", f"sbx-b-{secrets.token_hex(2)}"
    conn = await asyncpg.connect(pg_url)
    try:
        async with replica(pg_url, nats_url, namespace, b_id) as b:
            await release(b.url, admin, name)
        # what a SIGKILLed replica leaves: leases it no longer refreshes, rows saying "running"
        for key in (name, idle):
            await conn.execute(
                "INSERT INTO sandbox.owners (key, server, instance, expires_at)"
                " VALUES ($1, $1, $2, now() - interval '1 second') ON CONFLICT (key)"
                " DO UPDATE SET instance = $2, expires_at = now() - interval '1 second'",
                key,
                dead,
            )
            await conn.execute(
                "INSERT INTO sandbox.processes (key, server, state, pid, instance)"
                " VALUES ($1, $1, 'running', 4242, $2) ON CONFLICT (key)"
                " DO UPDATE SET state = 'running', pid = 4242, instance = $2",
                key,
                dead,
            )
        async with replica(pg_url, nats_url, namespace, b_id) as b:
            reply = await call_via(bus, b_id, name, "add", {"a": 5, "b": 5}, 1)
            assert structured(reply) == 10
            assert holders([b], name) == [b_id]
            gone = await events.wait_for(
                lambda e: (
                    e["type"] == "sandbox.process.status"
                    and e["data"]["key"] == idle
                    and e["data"]["reason"] == "owner replica gone"
                )
            )
            assert gone["data"]["instance"] == dead
            assert gone["data"]["state"] == "stopped"
            rows = await conn.fetch(
                "SELECT key, instance FROM sandbox.processes WHERE key = ANY($1::text[])",
                [name, idle],
            )
            assert [(r["key"], r["instance"]) for r in rows] == [(name, b_id)]
    finally:
        await conn.close()
