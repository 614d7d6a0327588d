"""Recording: tool calls with redacted arguments, activity with before/after, once by event id."""

from __future__ import annotations

import uuid

import asyncpg

from libs.common import bus as busmod
from libs.common.events import SERVER_UPDATED, TOOL_CALLED, Event, ServerChanged, ToolCalled
from libs.devstack.harness import until
from tests.integration.audit import registry_events


def tool_call(server: str, tool: str = "search", **fields) -> Event:
    """A gateway.tool.called event."""
    payload = ToolCalled(server=server, tool=tool, status=fields.pop("status", "ok"), **fields)
    return TOOL_CALLED.event(payload, source="gateway", actor=fields.get("principal_id"))


async def record(pool: asyncpg.Pool, call_id: str) -> asyncpg.Record | None:
    """The stored call with this id."""
    async with pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM audit.tool_calls WHERE id = $1::uuid", call_id)


async def recorded_under(
    publisher: busmod.Bus, pool: asyncpg.Pool, policy: str, arguments: dict
) -> asyncpg.Record:
    """Set the registry's audit_arguments policy, then publish a call and wait for its record."""
    setting = registry_events.setting("audit_arguments", policy)
    await publisher.publish(setting)
    call = tool_call("github", arguments=arguments)
    await publisher.publish(call)
    return await until(lambda: record(pool, call.id))


async def test_a_tool_call_is_stored_with_only_argument_names_under_the_keys_policy(
    audit_url: str, audit_pool: asyncpg.Pool, publisher: busmod.Bus, clean: None
) -> None:
    event = tool_call(
        "github",
        principal_id="u1",
        principal_name="ada",
        org="o1",
        team="t1",
        latency_ms=12.5,
        arguments={"query": "hello", "token": "sbk_abcdefghijkl"},
    )
    await publisher.publish(event)
    row = await until(lambda: record(audit_pool, event.id))
    assert row["server"] == "github"
    assert row["principal_name"] == "ada"
    assert row["org"] == "o1"
    assert row["latency_ms"] == 12.5
    assert row["arguments"] == {"query": "[redacted]", "token": "[redacted]"}
    assert row["tool_fingerprint"] is None  # an event from before the gateway named it


async def test_a_record_names_the_tool_definition_that_was_called(
    audit_url: str, audit_pool: asyncpg.Pool, publisher: busmod.Bus, clean: None
) -> None:
    fingerprint = "sha256:" + "ab" * 32
    event = tool_call("github", tool_fingerprint=fingerprint)
    await publisher.publish(event)
    row = await until(lambda: record(audit_pool, event.id))
    assert row["tool_fingerprint"] == fingerprint


async def test_the_registry_setting_switches_to_full_arguments_with_secrets_masked(
    audit_url: str, audit_pool: asyncpg.Pool, publisher: busmod.Bus, clean: None
) -> None:
    arguments = {"query": "hello", "password": "hunter2", "nested": {"k": "ghp_abcdefghij1234"}}
    row = await recorded_under(publisher, audit_pool, "full", arguments)
    assert row["arguments"] == {
        "query": "hello",
        "password": "[redacted]",
        "nested": {"k": "[redacted]"},
    }


async def test_the_none_policy_stores_no_arguments(
    audit_url: str, audit_pool: asyncpg.Pool, publisher: busmod.Bus, clean: None
) -> None:
    row = await recorded_under(publisher, audit_pool, "none", {"query": "hello"})
    assert row["arguments"] is None


async def test_an_admin_change_becomes_an_activity_record_with_before_and_after(
    audit_url: str, audit_pool: asyncpg.Pool, publisher: busmod.Bus, clean: None
) -> None:
    event = Event(
        type="registry.server.updated",
        source="registry",
        actor="admin-1",
        org="o1",
        # a payload with more than ServerChanged: the activity record keeps what it came with
        data={
            "server": "github",
            "server_id": "5d9c1f4e-0000-4000-8000-000000000001",
            "version": 2,
            "before": {"enabled": True},
            "after": {"enabled": False},
        },
    )
    await publisher.publish(event)

    async def stored() -> asyncpg.Record | None:
        async with audit_pool.acquire() as conn:
            return await conn.fetchrow("SELECT * FROM audit.events WHERE id = $1::uuid", event.id)

    row = await until(stored)
    assert (row["action"], row["actor"], row["org"], row["target"]) == (
        "registry.server.updated",
        "admin-1",
        "o1",
        "github",
    )
    assert row["before"] == {"enabled": True}
    assert row["after"] == {"enabled": False}


async def test_a_redelivered_event_is_stored_once(
    audit_url: str, audit_pool: asyncpg.Pool, publisher: busmod.Bus, clean: None
) -> None:
    server = f"dup-{uuid.uuid4().hex[:8]}"
    event = tool_call(server)
    marker = tool_call(server, tool="marker")
    for msg_id in (event.id, str(uuid.uuid4()), str(uuid.uuid4())):
        # different Nats-Msg-Ids get past JetStream's dedup, so only audit's own dedup is left
        await publisher.js.publish(
            publisher.subject(event.subject),
            event.to_bytes(),
            stream=publisher.stream,
            headers={"Nats-Msg-Id": msg_id},
        )
    await publisher.publish(marker)
    await until(lambda: record(audit_pool, marker.id))

    async def count() -> int:
        async with audit_pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT count(*) FROM audit.tool_calls WHERE server = $1", server
            )

    assert await count() == 2
    async with audit_pool.acquire() as conn:
        calls = await conn.fetchval(
            "SELECT sum(calls) FROM audit.call_rollups WHERE server = $1", server
        )
    assert calls == 2


async def test_a_refresh_summary_is_kept_as_one_activity_record_per_tool(
    audit_url: str, audit_pool: asyncpg.Pool, publisher: busmod.Bus, clean: None
) -> None:
    server = f"wide-{uuid.uuid4().hex[:8]}"
    changes = [
        {"tool": "a", "change": "discovered", "state": "approved", "routable": True,
         "fingerprint": "sha256:aa", "flags": []},
        {"tool": "b", "change": "quarantined", "state": "quarantined", "routable": False,
         "fingerprint": "sha256:bb", "flags": ["hidden_instruction_tag"]},
        {"tool": "c", "change": "restored", "state": "approved", "routable": True,
         "fingerprint": "sha256:cc", "flags": []},
        {"tool": "d", "change": "removed", "state": "removed", "routable": False,
         "fingerprint": None, "flags": []},
    ]  # fmt: skip
    payload = ServerChanged(server, "id-1", 7, ["tools"], {"discovered": 1}, changes)
    event = SERVER_UPDATED.event(payload, source="registry", actor="admin-1", org="o1")
    for msg_id in (event.id, str(uuid.uuid4())):  # redelivered: each record is kept once
        await publisher.js.publish(
            publisher.subject(event.subject),
            event.to_bytes(),
            stream=publisher.stream,
            headers={"Nats-Msg-Id": msg_id},
        )
    marker = tool_call(server, tool="marker")
    await publisher.publish(marker)
    await until(lambda: record(audit_pool, marker.id))
    async with audit_pool.acquire() as conn:
        stored = await conn.fetch("SELECT * FROM audit.events WHERE target = $1", server)
    assert len(stored) == 5
    rows = {r["action"]: r for r in stored}
    # what the registry published one by one before: one record per tool, as the tool's event
    assert set(rows) == {
        "registry.server.updated",
        "registry.tool.discovered",
        "registry.tool.quarantined",
        "registry.tool.approved",
        "registry.tool.removed",
    }
    quarantined = rows["registry.tool.quarantined"]
    assert quarantined["data"] == {
        "server": server,
        "tool": "b",
        "version": 7,
        "state": "quarantined",
        "routable": False,
        "fingerprint": "sha256:bb",
        "flags": ["hidden_instruction_tag"],
    }
    assert (quarantined["actor"], quarantined["org"]) == ("admin-1", "o1")
    assert "tool_changes" not in rows["registry.server.updated"]["data"]
    assert rows["registry.server.updated"]["data"]["tools"] == {"discovered": 1}
