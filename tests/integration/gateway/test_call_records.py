"""What a call's record says, and per-team concurrency caps.

The record says the definition called and the arguments under the platform's policy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.gateway.jsonrpc import RATE_LIMITED, RpcFault
from services.registry import config
from services.registry.context import Registry
from tests.integration.gateway.conftest import ADMIN, calculator, member, register
from tests.support.upstreams import run_upstream

SECRET = "sbk_" + "s3cr3t" * 6
ECHO = {"name": "calc__echo", "arguments": {"text": SECRET}}


async def set_policy(registry: Registry, core: Any, value: str) -> None:
    """Set `audit_arguments` and wait until the gateway core follows it."""
    async with registry.pool.acquire() as conn, conn.transaction():
        await config.put(registry, conn, "audit_arguments", value, "test")
    async with asyncio.timeout(5):
        while core.table.settings.get("audit_arguments") != value:
            await asyncio.sleep(0.02)


async def test_the_record_names_the_definition_called_by_the_registry_s_fingerprint(
    registry: Registry, core_factory: Any, calls: Any
) -> None:
    async with run_upstream(calculator()) as url:
        server = await register(registry, "calc", url)
        core = await core_factory()
        await core.call(ADMIN, "tools/call", {"name": "calc__add", "arguments": {"a": 1, "b": 2}})
        event = await calls.wait_for(lambda e: e.data["tool"] == "add")
    stored = await registry.pool.fetchval(
        "SELECT fingerprint FROM registry.tools WHERE server_id = $1 AND name = 'add'", server["id"]
    )
    assert stored.startswith("sha256:")
    assert event.data["tool_fingerprint"] == stored


async def test_arguments_on_the_event_stream_follow_the_audit_policy(
    registry: Registry, core_factory: Any, calls: Any
) -> None:
    async with run_upstream(calculator()) as url:
        await register(registry, "calc", url)
        core = await core_factory()
        seen: dict[str, Any] = {}
        try:
            for policy in ("keys", "full", "none"):
                await set_policy(registry, core, policy)
                note = f"note_{policy}"  # names each policy's call (keys survive but `none`)
                args = {"text": SECRET, note: "plain", "nested": {"api_key": "k"}}
                await core.call(ADMIN, "tools/call", {"name": "calc__echo", "arguments": args})
                event = await calls.wait_for(
                    lambda e, n=note, p=policy: (
                        e.data["tool"] == "echo"
                        and (
                            n in (e.data["arguments"] or {})
                            or (p == "none" and not e.data["arguments"])
                        )
                    )
                )
                seen[policy] = event.data["arguments"]
        finally:
            await set_policy(registry, core, "keys")
    assert seen["keys"] == {"text": "[redacted]", "note_keys": "[redacted]", "nested": "[redacted]"}
    assert seen["full"] == {
        "text": "[redacted]", "note_full": "plain", "nested": {"api_key": "[redacted]"}
    }  # fmt: skip
    assert seen["none"] is None


async def test_a_team_s_calls_beyond_its_cap_are_refused_and_other_teams_are_not_held_up(
    registry: Registry, core_factory: Any
) -> None:
    slow = {"name": "calc__slow", "arguments": {"seconds": 1.0}}
    async with run_upstream(calculator()) as url:
        await register(registry, "calc", url)
        alice = member(("team-a", "calc", {"read", "execute"}))
        bob = member(("team-b", "calc", {"read", "execute"}), teams=("team-b",))
        carol = member(("team-c", "calc", {"read", "execute"}), teams=("team-c",))
        core = await core_factory(
            GATEWAY_TEAM_MAX_CONCURRENCY="1", GATEWAY_TEAM_CONCURRENCY_OVERRIDES="team-c=0"
        )
        running = asyncio.ensure_future(core.call(alice, "tools/call", slow))
        async with asyncio.timeout(5):
            while not core.gateway.team_limits.running.get("team-a"):
                await asyncio.sleep(0.01)
        with pytest.raises(RpcFault) as refused:
            await core.call(alice, "tools/call", slow)
        others = await asyncio.gather(
            core.call(bob, "tools/call", {"name": "calc__add", "arguments": {"a": 1, "b": 1}}),
            core.call(carol, "tools/call", slow),
            core.call(carol, "tools/call", slow),  # team-c: no cap
            core.call(ADMIN, "tools/call", slow),  # no team: no cap
        )
        first = await running
        again = await core.call(alice, "tools/call", {"name": "calc__add", "arguments": {"a": 2}})
    assert refused.value.code == RATE_LIMITED
    assert refused.value.data == {"team": "team-a", "limit": 1, "reason": "team_concurrency"}
    assert [r.get("isError", False) for r in others] == [False, False, False, False]
    assert first["content"][0]["text"] == "done"
    assert "isError" in again  # admitted again once the first call ended (an argument error)
    assert core.gateway.team_limits.running == {}
