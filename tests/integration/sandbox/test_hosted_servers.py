"""Hosted stdio servers: lazy start, shared process, crash restart, idle stop, lifecycle routes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest

from libs.common import rpc
from libs.common.bus import Bus, RpcError
from tests.integration.sandbox.conftest import EventTap, register_stdio, unique_name
from tests.support.auth import AuthClient
from tests.support.sse import stream_messages


def call_msg(tool: str, args: dict[str, Any] | None = None, rid: Any = 1) -> dict[str, Any]:
    """A tools/call request."""
    return {
        "jsonrpc": "2.0",
        "id": rid,
        "method": "tools/call",
        "params": {"name": tool, "arguments": args or {}},
    }


async def call(bus: Bus, server: str, tool: str, args: dict | None = None, rid: Any = 1) -> dict:
    """rpc.sandbox.call as the gateway makes it; returns the JSON-RPC response."""
    reply = await bus.request(
        rpc.SANDBOX_CALL, {"server": server, "message": call_msg(tool, args, rid)}, timeout=30
    )
    return reply["message"]


def structured(reply: dict) -> Any:
    """The tool result's structured content, or its text parsed as JSON."""
    result = reply["result"]
    if result.get("structuredContent") is not None:
        content = result["structuredContent"]
        return content.get("result", content)
    return orjson.loads(result["content"][0]["text"])


async def test_a_registered_stdio_server_starts_on_its_first_call_inside_a_sandbox(
    sandbox: Any, reg_api: httpx.AsyncClient, admin: dict, bus: Bus, events: EventTap
) -> None:
    name = unique_name()
    await register_stdio(reg_api, admin, name, env={"GREETING": "hello-secret"})
    reply = await call(bus, name, "whoami", rid="caller-id")
    assert reply["id"] == "caller-id"
    facts = structured(reply)
    assert facts["uid"] == 65534
    assert facts["hostname"] == "sandbox"
    assert facts["cwd"] == "/work"
    assert facts["pid"] < 10  # its own PID namespace
    env = await call(bus, name, "getenv", {"name": "GREETING"})
    assert structured(env) == "hello-secret"
    running = await events.wait_for(
        lambda e: (
            e["type"] == "sandbox.process.status"
            and e["data"]["server"] == name
            and e["data"]["state"] == "running"
        )
    )
    assert running["data"]["isolation"] == "bwrap-userns"
    assert "hello-secret" not in orjson.dumps(running).decode()


async def test_fifty_concurrent_calls_share_one_process(
    sandbox: Any, reg_api: httpx.AsyncClient, admin: dict, bus: Bus
) -> None:
    name = unique_name()
    await register_stdio(reg_api, admin, name)
    rt = sandbox.state.runtime
    await rt.manager.stop(name)
    replies = await asyncio.gather(
        *(call(bus, name, "add", {"a": i, "b": 1}, i) for i in range(50))
    )
    assert [structured(r) for r in replies] == [i + 1 for i in range(50)]
    assert [r["id"] for r in replies] == list(range(50))
    procs = rt.manager.status(name)
    assert len(procs) == 1
    pids = {structured(await call(bus, name, "whoami"))["pid"] for _ in range(3)}
    assert len(pids) == 1


async def test_a_crashed_server_is_restarted_with_backoff(
    sandbox: Any, reg_api: httpx.AsyncClient, admin: dict, bus: Bus, events: EventTap
) -> None:
    name = unique_name()
    await register_stdio(reg_api, admin, name)
    await call(bus, name, "echo", {"text": "up"})
    with pytest.raises(RpcError) as err:
        await call(bus, name, "crash", {"code": 7})
    assert err.value.code == "UPSTREAM_ERROR"
    crashed = await events.wait_for(
        lambda e: e["data"].get("server") == name and e["data"].get("state") == "crashed"
    )
    assert crashed["data"]["exit_code"] == 7
    backoff = await events.wait_for(
        lambda e: e["data"].get("server") == name and e["data"].get("state") == "backoff"
    )
    assert backoff["data"]["backoff_s"] == 0.5
    await events.wait_for(
        lambda e: (
            e["data"].get("server") == name
            and e["data"].get("state") == "running"
            and e["data"].get("restarts") == 1
        )
    )
    assert structured(await call(bus, name, "echo", {"text": "again"})) == "again"


async def test_an_idle_server_is_stopped(
    sandbox: Any, reg_api: httpx.AsyncClient, admin: dict, bus: Bus, events: EventTap
) -> None:
    name = unique_name()
    await register_stdio(reg_api, admin, name)
    await call(bus, name, "echo", {"text": "x"})
    stopped = await events.wait_for(
        lambda e: e["data"].get("server") == name and e["data"].get("state") == "stopped",
        timeout=15,
    )
    assert stopped["data"]["reason"] == "idle"


async def test_stop_start_and_status_through_the_api(
    sandbox: Any, api: httpx.AsyncClient, reg_api: httpx.AsyncClient, admin: dict, bus: Bus
) -> None:
    name = unique_name()
    await register_stdio(reg_api, admin, name)
    started = await api.post(f"/api/v1/sandbox/servers/{name}/start", headers=admin)
    assert started.status_code == 200
    assert started.json()["state"] == "running"
    status = await api.get(f"/api/v1/sandbox/servers/{name}/status", headers=admin)
    assert status.status_code == 200
    assert status.json()["running"] is True
    stop = await api.post(
        f"/api/v1/sandbox/servers/{name}/stop",
        json={"graceful": True, "timeout": 4},
        headers=admin,
    )
    assert stop.status_code == 200
    assert [p["state"] for p in stop.json()["processes"]] == ["stopped"]
    restarted = await api.post(f"/api/v1/sandbox/servers/{name}/restart", headers=admin)
    assert restarted.status_code == 200
    assert restarted.json()["state"] == "running"


async def test_logs_are_kept_filtered_and_published_live(
    sandbox: Any, api: httpx.AsyncClient, reg_api: httpx.AsyncClient, admin: dict, bus: Bus
) -> None:
    name = unique_name()
    await register_stdio(reg_api, admin, name)
    live: list[dict] = []

    async def collect(msg: Any) -> None:
        live.append(orjson.loads(msg.data))

    sub = await bus.nc.subscribe(bus.subject(f"live.sandbox.logs.{name}"), cb=collect)
    await call(bus, name, "log", {"text": "routine", "level": "INFO"})
    await call(bus, name, "log", {"text": "broken", "level": "ERROR"})
    resp = await api.get(
        f"/api/v1/sandbox/servers/{name}/logs", params={"level": "error"}, headers=admin
    )
    assert resp.status_code == 200
    messages = [line["message"] for line in resp.json()["items"]]
    assert messages == ["ERROR broken"]
    async with asyncio.timeout(5):
        while not any(line["message"] == "ERROR broken" for line in live):
            await asyncio.sleep(0.05)
    await sub.unsubscribe()
    bad = await api.get(
        f"/api/v1/sandbox/servers/{name}/logs", params={"level": "loud"}, headers=admin
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_following_logs_streams_new_lines(
    sandbox: Any, api: httpx.AsyncClient, reg_api: httpx.AsyncClient, admin: dict, bus: Bus
) -> None:
    name = unique_name()
    await register_stdio(reg_api, admin, name)
    await call(bus, name, "echo", {"text": "warm"})
    url = f"/api/v1/sandbox/servers/{name}/logs"
    async with api.stream("GET", url, params={"follow": "true"}, headers=admin) as resp:
        assert resp.status_code == 200
        await call(bus, name, "log", {"text": "streamed", "level": "WARNING"})
        async with asyncio.timeout(10):
            async for line in stream_messages(resp):
                if "streamed" in line["message"]:
                    assert line["level"] == "warning"
                    break


async def test_lifecycle_needs_a_credential_and_a_grant(
    sandbox: Any, api: httpx.AsyncClient, reg_api: httpx.AsyncClient, admin: dict, auth: Any
) -> None:
    org = await auth.create_org()
    name = unique_name()
    await register_stdio(reg_api, admin, name, org=org["id"], enabled=False)
    anonymous = await api.post(f"/api/v1/sandbox/servers/{name}/start")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "UNAUTHENTICATED"
    user = await auth.create_user()
    unseen = await api.post(
        f"/api/v1/sandbox/servers/{name}/start", headers=auth.bearer(user.token)
    )
    assert unseen.status_code == 404  # not the caller's org's: not there for it
    assert unseen.json()["error"]["code"] == "NOT_FOUND"
    team = await auth.create_team(org["slug"])
    await auth.add_member(team["name"], user)
    await auth.grant(team["name"], name, ["read"])
    token = (await auth.login(user.username, user.password))["access_token"]
    forbidden = await api.post(f"/api/v1/sandbox/servers/{name}/start", headers=auth.bearer(token))
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "FORBIDDEN"


async def test_an_unknown_server_is_not_found(bus: Bus, sandbox: Any) -> None:
    with pytest.raises(RpcError) as err:
        await call(bus, unique_name("ghost"), "echo", {"text": "x"})
    assert err.value.status == 404


async def test_discover_lists_the_tools_of_a_stdio_server(
    sandbox: Any, reg_api: httpx.AsyncClient, admin: dict, bus: Bus
) -> None:
    name = unique_name()
    await register_stdio(reg_api, admin, name)
    found = await bus.request(rpc.SANDBOX_DISCOVER, {"server": name}, timeout=30)
    assert {"echo", "add", "whoami", "crash"} <= {t["name"] for t in found["tools"]}
    assert found["resources"] == []


async def test_the_status_reports_the_isolation_tier(api: httpx.AsyncClient, admin: dict) -> None:
    resp = await api.get("/api/v1/sandbox/status", headers=admin)
    assert resp.status_code == 200
    assert resp.json()["isolation"]["tier"] == "bwrap-userns"
    assert resp.json()["limits"]["memory_mb"] == 2048
    self_test = resp.json()["self_test"]
    assert self_test["ok"] is True, self_test
    assert {c["name"] for c in self_test["checks"]} == {"layout", "hosted_server", "code_run"}


async def test_discovering_a_stopped_server_answers_its_last_listing_without_starting_it(
    sandbox: Any, reg_api: httpx.AsyncClient, admin: dict, bus: Bus
) -> None:
    name = unique_name()
    await register_stdio(reg_api, admin, name)
    first = await bus.request(rpc.SANDBOX_DISCOVER, {"server": name}, timeout=30)
    rt = sandbox.state.runtime
    await rt.manager.stop(name)
    again = await bus.request(rpc.SANDBOX_DISCOVER, {"server": name}, timeout=30)
    assert again == first
    assert not rt.manager.running(name)


async def test_only_platform_admins_see_the_self_tests_host_paths(
    api: httpx.AsyncClient, auth: AuthClient
) -> None:
    user = await auth.create_user()
    resp = await api.get("/api/v1/sandbox/status", headers=auth.bearer(user.token))
    assert resp.status_code == 200
    assert set(resp.json()["self_test"]) == {"ok", "checked_at"}


async def test_a_per_user_server_with_a_long_name_starts_for_a_user(
    sandbox: Any, reg_api: httpx.AsyncClient, admin: dict, bus: Bus
) -> None:
    name = unique_name("per-user-server-with-a-name-as-long-as-names-may-be")  # 57 chars
    await register_stdio(reg_api, admin, name, per_user=True)
    principal = {"kind": "user", "id": str(uuid.uuid4()), "name": "someone"}
    message = call_msg("echo", {"text": "mine"})
    reply = await bus.request(
        rpc.SANDBOX_CALL, {"server": name, "message": message, "principal": principal}, timeout=30
    )
    assert reply["message"]["result"]["content"][0]["text"] == "mine"
