"""Live: /ws/events relays what a principal may see within a second; /ws/health_status."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import orjson
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from libs.common import bus as busmod
from libs.common.events import SERVER_UPDATED, TOOL_CALLED, ServerChanged, ToolCalled
from libs.devstack.harness import serving, until
from services.audit.app import create_app
from tests.integration.audit import registry_events
from tests.integration.audit.conftest import People, audit_settings_for


def ws_url(base: str, path: str) -> str:
    """The ws:// URL of `path`."""
    return base.replace("http://", "ws://") + path


async def receive(ws, kind: str, timeout: float = 1.0) -> dict:
    """The next message of `kind` (others skipped) within `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            msg = orjson.loads(await ws.recv())
            if msg.get("type") == kind or msg.get("channel") == kind:
                return msg


async def connect(base: str, token: str, *channels: str):
    """An authenticated /ws/events connection subscribed to `channels`."""
    ws = await websockets.connect(ws_url(base, "/ws/events"))
    await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
    await receive(ws, "authenticated", 5)
    for channel in channels:
        await ws.send(orjson.dumps({"type": "subscribe", "channel": channel}).decode())
        await receive(ws, "subscribed", 5)
    return ws


async def test_an_org_admin_gets_their_orgs_status_change_and_call_within_a_second_only(
    audit_url: str, publisher: busmod.Bus, people: People
) -> None:
    a, b = people.org_a["id"], people.org_b["id"]
    ws = await connect(audit_url, people.alice.token, "server-status", "tool-calls")
    try:
        other = f"other-{uuid.uuid4().hex[:6]}"
        mine = f"mine-{uuid.uuid4().hex[:6]}"
        for server, org in ((other, b), (mine, a)):
            await publisher.publish(registry_events.server_status(server, "unhealthy", org=org))
            await publisher.publish(
                TOOL_CALLED.event(
                    ToolCalled(
                        server=server,
                        tool="x",
                        status="ok",
                        org=org,
                        arguments={"token": "sbk_secretsecret"},
                    ),
                    source="gateway",
                )  # fmt: skip
            )
        status = await receive(ws, "server-status")
        call = await receive(ws, "tool-calls")
        assert status["data"]["server"] == mine  # org B's came first and was not delivered
        assert call["data"]["server"] == mine
        assert call["data"]["arguments"] == {"token": "[redacted]"}  # as the store keeps it
    finally:
        await ws.close()


async def test_filters_ping_and_bad_messages(audit_url: str, publisher: busmod.Bus, people: People):
    ws = await connect(audit_url, people.admin)
    try:
        await ws.send('{"type":"ping","id":7}')
        assert (await receive(ws, "pong"))["id"] == 7
        await ws.send('{"type":"subscribe","channel":"nope"}')
        assert (await receive(ws, "error"))["code"] == "VALIDATION_ERROR"
        want = f"f-{uuid.uuid4().hex[:6]}"
        sub = {"type": "subscribe", "channel": "tool-calls", "filters": {"serverId": want}}
        await ws.send(orjson.dumps(sub).decode())
        await receive(ws, "subscribed")
        for server in ("not-this", want):
            event = TOOL_CALLED.event(
                ToolCalled(server=server, tool="x", status="ok"), source="gateway"
            )
            await publisher.publish(event)
        assert (await receive(ws, "tool-calls"))["data"]["server"] == want
    finally:
        await ws.close()


async def test_members_may_not_subscribe_to_admin_channels(audit_url: str, people: People):
    ws = await connect(audit_url, people.bob.token)
    try:
        await ws.send('{"type":"subscribe","channel":"monitoring"}')
        assert (await receive(ws, "error"))["code"] == "FORBIDDEN"
    finally:
        await ws.close()


async def test_a_bad_or_missing_credential_closes_with_4401(audit_url: str) -> None:
    async with websockets.connect(ws_url(audit_url, "/ws/events")) as ws:
        await ws.send('{"type":"auth","token":"sbk_not-a-real-key"}')
        assert (await receive(ws, "error", 5))["code"] == "UNAUTHENTICATED"
        async with asyncio.timeout(5):
            await ws.wait_closed()
        assert ws.close_code == 4401


async def test_health_status_sends_the_map_on_connect_and_on_a_change_without_server_names(
    audit_url: str, publisher: busmod.Bus, people: People
) -> None:
    server = f"h-{uuid.uuid4().hex[:6]}"
    async with websockets.connect(ws_url(audit_url, "/ws/health_status")) as ws:
        first = await receive(ws, "health", 5)
        assert "services" in first["data"] and first["data"]["servers"] == {}
        admin = await connect(audit_url, people.admin, "health")
        try:
            await publisher.publish(registry_events.server_status(server, "healthy"))
            async with asyncio.timeout(5):  # a platform admin's map names it...
                while (await receive(admin, "health", 5))["data"]["servers"].get(server) is None:
                    pass
            changed = await receive(ws, "health", 5)  # ...the public one, sent on the change, not
            assert changed["data"]["servers"] == {}
        finally:
            await admin.close()


async def test_a_slow_client_is_closed_with_4008_without_slowing_others(
    pg_url: str, nats_url: str, namespace: str, publisher: busmod.Bus, people: People
) -> None:
    settings = audit_settings_for(
        pg_url, nats_url, namespace, AUDIT_WS_QUEUE="2", SWITCHBOARD_INSTANCE="audit-slow"
    )
    async with serving(create_app(settings)) as url:
        ws = await connect(url, people.admin, "tool-calls")
        try:
            for _ in range(50):  # a burst: the hub queues faster than the socket drains
                event = TOOL_CALLED.event(
                    ToolCalled(server="s", tool="x", status="ok"), source="gateway"
                )
                # core publish (not stored): only the live relay sees it
                await publisher.nc.publish(publisher.subject(event.subject), event.to_bytes())
            async with asyncio.timeout(5):
                while True:
                    try:
                        await ws.recv()
                    except websockets.ConnectionClosed:
                        break
            assert ws.close_code == 4008
        finally:
            await ws.close()


async def test_another_site_s_page_cannot_open_the_sockets_the_console_and_allowed_ones_can(
    pg_url: str, nats_url: str, namespace: str, people: People
) -> None:
    settings = audit_settings_for(
        pg_url,
        nats_url,
        namespace,
        SWITCHBOARD_PUBLIC_URL="https://switchboard.example.com",
        AUDIT_ALLOWED_ORIGINS="https://console.example.org",
        SWITCHBOARD_INSTANCE="audit-origins",
    )
    async with serving(create_app(settings)) as url:
        for path in ("/ws/events", "/ws/health_status"):
            for origin in ("https://evil.example", "null", "https://switchboard.example.com.evil"):
                with pytest.raises(InvalidStatus) as err:
                    await websockets.connect(ws_url(url, path), origin=origin)
                assert err.value.response.status_code == 403, (path, origin)
        for origin in ("https://switchboard.example.com", "https://console.example.org", None):
            ws = await websockets.connect(ws_url(url, "/ws/events"), origin=origin)
            try:
                await ws.send(orjson.dumps({"type": "auth", "token": people.admin}).decode())
                await receive(ws, "authenticated", 5)
            finally:
                await ws.close()


async def stored_policy(pool: asyncpg.Pool, value: str) -> bool:
    """Whether audit stored `value` as its arguments policy."""
    async with pool.acquire() as conn:
        got = await conn.fetchval("SELECT value FROM audit.settings WHERE key = 'audit_arguments'")
    return got == value


async def test_a_live_tool_call_shows_its_arguments_redacted_as_the_store_keeps_them(
    audit_url: str, audit_pool: asyncpg.Pool, publisher: busmod.Bus, people: People
) -> None:
    ws = await connect(audit_url, people.admin, "tool-calls")
    seen: dict[str, Any] = {}
    try:
        for policy in ("keys", "full", "none"):
            setting = registry_events.setting("audit_arguments", policy)
            await publisher.publish(setting)
            server = f"live-{policy}-{uuid.uuid4().hex[:6]}"
            # an event as a publisher that redacts nothing would send it
            args = {"query": "hello", "token": "sbk_abcdefghijklmnop", "deep": {"secret": "x"}}
            event = TOOL_CALLED.event(
                ToolCalled(server=server, tool="search", status="ok", arguments=args),
                source="gateway",
            )
            await publisher.publish(event)
            async with asyncio.timeout(5):
                while True:
                    msg = await receive(ws, "tool-calls", 5)
                    if msg["data"]["server"] == server:
                        seen[policy] = msg["data"]["arguments"]
                        break
    finally:
        await ws.close()
        back = registry_events.setting("audit_arguments", "keys")
        await publisher.publish(back)
        await until(lambda: stored_policy(audit_pool, "keys"))  # later tests start from keys
    assert seen["keys"] == {"query": "[redacted]", "token": "[redacted]", "deep": "[redacted]"}
    assert seen["full"] == {
        "query": "hello", "token": "[redacted]", "deep": {"secret": "[redacted]"}}  # fmt: skip
    assert seen["none"] is None


async def test_a_refresh_summary_is_relayed_as_the_activity_of_each_tool(
    audit_url: str, publisher: busmod.Bus, people: People
) -> None:
    ws = await connect(audit_url, people.admin, "activity", "server-status")
    try:
        server = f"wide-{uuid.uuid4().hex[:6]}"
        changes = [
            {"tool": name, "change": "discovered", "state": "approved", "routable": True,
             "fingerprint": f"sha256:{name}", "flags": []}
            for name in ("a", "b")
        ]  # fmt: skip
        payload = ServerChanged(server, "id-1", 3, ["tools"], {"discovered": 2}, changes)
        await publisher.publish(SERVER_UPDATED.event(payload, source="registry"))
        status = await receive(ws, "server-status")
        assert status["data"]["tools"] == {"discovered": 2}
        assert "tool_changes" not in status["data"]
        first, second = [(await receive(ws, "activity"))["data"] for _ in range(2)]
        assert [first["tool"], second["tool"]] == ["a", "b"]
        assert first == {
            "server": server,
            "tool": "a",
            "version": 3,
            "state": "approved",
            "routable": True,
            "fingerprint": "sha256:a",
            "flags": [],
        }
    finally:
        await ws.close()
