"""Alerts: rules CRUD, evaluation firing and resolving, events on /ws/events, the webhook."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
from aiohttp import web

from libs.common import bus as busmod
from libs.common.events import ALERT_FIRED, TOOL_CALLED, Event, ToolCalled
from libs.common.outbound import Guard
from libs.devstack.harness import free_port, until
from services.audit import alerts
from services.audit.store import alerts as alert_store
from tests.integration.audit import registry_events
from tests.integration.audit.conftest import People, bearer
from tests.integration.audit.test_live import connect

pytestmark = pytest.mark.usefixtures("clean")


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, asyncio.Queue[dict[str, Any]]]]:
    """A local webhook receiver: its URL and the JSON bodies POSTed to it."""
    got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await got.put(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook", got
    finally:
        await runner.cleanup()


async def call(
    publisher: busmod.Bus, server: str, status: str = "ok", latency: float = 1.0, org: str = ""
) -> None:
    """Publish one tool call as the gateway would."""
    payload = ToolCalled(server=server, tool="t", status=status, latency_ms=latency,
                         org=org or None)  # fmt: skip
    await publisher.publish(TOOL_CALLED.event(payload, source="gateway"))


async def next_event(ws: Any, event_type: str, server: str, timeout: float = 10) -> dict:
    """The next `alerts` message of `event_type` about `server`."""
    async with asyncio.timeout(timeout):
        while True:
            msg = orjson.loads(await ws.recv())
            if msg.get("event_type") == event_type and msg["data"]["server"] == server:
                return msg


async def alerts_of(api: httpx.AsyncClient, token: str, **params: str) -> dict[str, Any]:
    """GET /api/v1/alerts as `token`."""
    resp = await api.get("/api/v1/alerts", params=params, headers=bearer(token))
    assert resp.status_code == 200
    return resp.json()


async def test_rules_are_created_read_changed_and_deleted_by_admins(
    api: httpx.AsyncClient, people: People
) -> None:
    admin = bearer(people.admin)
    body = {"name": unique("rule"), "kind": "latency_p95", "server": "s1", "threshold": 250}
    resp = await api.post("/api/v1/alerts/rules", json=body, headers=admin)
    assert resp.status_code == 201
    rule = resp.json()
    assert (rule["kind"], rule["threshold"], rule["window_minutes"], rule["org"]) == (
        "latency_p95", 250, 5, None)  # fmt: skip
    again = await api.post("/api/v1/alerts/rules", json=body, headers=admin)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "CONFLICT"
    resp = await api.patch(
        f"/api/v1/alerts/rules/{rule['id']}", json={"threshold": 300, "enabled": False},
        headers=admin)  # fmt: skip
    assert resp.status_code == 200
    assert (resp.json()["threshold"], resp.json()["enabled"]) == (300, False)
    listed = (await api.get("/api/v1/alerts/rules", headers=admin)).json()
    assert [r["id"] for r in listed["items"]] == [rule["id"]]
    assert (listed["total"], listed["page"], listed["pages"]) == (1, 1, 1)
    assert (
        await api.delete(f"/api/v1/alerts/rules/{rule['id']}", headers=admin)
    ).status_code == 204
    gone = await api.get(f"/api/v1/alerts/rules/{rule['id']}", headers=admin)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "kind": "nope"},
        {"name": "x", "kind": "error_rate", "threshold": 1.5},
        {"name": "x", "kind": "server_unhealthy"},
        {"name": "x", "kind": "latency_p95", "window_minutes": 0},
        {"name": "x", "kind": "latency_p95", "webhook_url": "ftp://example.org"},
        {"name": "x", "kind": "latency_p95", "colour": "red"},
        {"kind": "latency_p95"},
    ],
)
async def test_invalid_rules_answer_422(
    api: httpx.AsyncClient, people: People, body: dict[str, Any]
) -> None:
    resp = await api.post("/api/v1/alerts/rules", json=body, headers=bearer(people.admin))
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_a_patch_that_breaks_the_rule_or_bad_query_answers_422(
    api: httpx.AsyncClient, people: People
) -> None:
    admin = bearer(people.admin)
    body = {"name": unique("rule"), "kind": "error_rate", "threshold": 0.2}
    rule = (await api.post("/api/v1/alerts/rules", json=body, headers=admin)).json()
    resp = await api.patch(f"/api/v1/alerts/rules/{rule['id']}", json={"threshold": 3},
                           headers=admin)  # fmt: skip
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
    for params in ({"state": "burning"}, {"since": "yesterday"}, {"rule": "x"}):
        resp = await api.get("/api/v1/alerts", params=params, headers=admin)
        assert resp.status_code == 422
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_org_admins_manage_only_their_orgs_rules(
    api: httpx.AsyncClient, people: People
) -> None:
    alice, carol = bearer(people.alice.token), bearer(people.carol.token)
    mine = {"name": unique("rule"), "kind": "error_rate", "threshold": 0.1,
            "org": people.org_a["slug"]}  # fmt: skip
    resp = await api.post("/api/v1/alerts/rules", json=mine, headers=alice)
    assert resp.status_code == 201
    rule = resp.json()
    assert rule["org"] == people.org_a["id"]
    for body, status in (({**mine, "name": unique("r"), "org": people.org_b["id"]}, 404),
                         ({**mine, "name": unique("r"), "org": None}, 403)):  # fmt: skip
        resp = await api.post("/api/v1/alerts/rules", json=body, headers=alice)
        assert resp.status_code == status  # another org is not there for her
        assert resp.json()["error"]["code"] == ("NOT_FOUND" if status == 404 else "FORBIDDEN")
    hooked = {**mine, "name": unique("r"), "webhook_url": "http://169.254.169.254/latest"}
    resp = await api.post("/api/v1/alerts/rules", json=hooked, headers=alice)
    assert resp.status_code == 403
    assert resp.json()["error"]["details"] == {"field": "webhook_url"}
    resp = await api.patch(f"/api/v1/alerts/rules/{rule['id']}", headers=alice,
                           json={"webhook_url": "http://10.0.0.1/"})  # fmt: skip
    assert resp.status_code == 403
    resp = await api.get(f"/api/v1/alerts/rules/{rule['id']}", headers=carol)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"
    assert (await api.get("/api/v1/alerts/rules", headers=carol)).json()["total"] == 0
    resp = await api.get("/api/v1/alerts/rules", headers=bearer(people.bob.token))
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "FORBIDDEN"


async def test_an_error_rate_rule_fires_and_resolves_with_events_webhook_and_list(
    api: httpx.AsyncClient,
    audit_url: str,
    publisher: busmod.Bus,
    people: People,
    receiver: tuple[str, asyncio.Queue[dict[str, Any]]],
) -> None:
    url, hooks = receiver
    server = unique("err")
    ws = await connect(audit_url, people.admin, "alerts")
    try:
        body = {"name": unique("rule"), "kind": "error_rate", "server": server,
                "threshold": 0.5, "window_minutes": 5, "webhook_url": url}  # fmt: skip
        resp = await api.post("/api/v1/alerts/rules", json=body, headers=bearer(people.admin))
        rule = resp.json()
        await call(publisher, server, "ok")
        for _ in range(3):
            await call(publisher, server, "error")
        fired = await next_event(ws, "audit.alert.fired", server)
        assert fired["data"]["rule_id"] == rule["id"]
        assert fired["data"]["value"] > 0.5 and fired["data"]["status"] == "firing"
        async with asyncio.timeout(10):
            hook = await hooks.get()
        assert (hook["type"], hook["alert"]["alert_id"]) == (
            "audit.alert.fired", fired["data"]["alert_id"])  # fmt: skip
        firing = await alerts_of(api, people.admin, state="firing", server=server)
        assert firing["total"] == 1 and firing["items"][0]["rule_id"] == rule["id"]
        for _ in range(5):  # 3 errors of 9 calls: 33 %, under the threshold
            await call(publisher, server, "ok")
        resolved = await next_event(ws, "audit.alert.resolved", server)
        assert resolved["data"]["alert_id"] == fired["data"]["alert_id"]
        assert resolved["data"]["resolved_at"] is not None
        async with asyncio.timeout(10):
            hook = await hooks.get()
        assert hook["type"] == "audit.alert.resolved"
        assert (await alerts_of(api, people.admin, state="firing", server=server))["total"] == 0
        done = await alerts_of(api, people.admin, state="resolved", server=server)
        assert done["total"] == 1 and done["items"][0]["state"] == "resolved"
        since = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        assert (await alerts_of(api, people.admin, server=server, since=since))["total"] == 0
    finally:
        await ws.close()


async def test_latency_and_unhealthy_rules_fire_and_an_unhealthy_server_recovering_resolves(
    api: httpx.AsyncClient, publisher: busmod.Bus, people: People, fetchval: Any
) -> None:
    admin = bearer(people.admin)
    slow, sick = unique("slow"), unique("sick")
    rules = [
        {"name": unique("p95"), "kind": "latency_p95", "server": slow, "threshold": 500},
        {
            "name": unique("down"),
            "kind": "server_unhealthy",
            "server": sick,
            "window_minutes": 5,
        },  # fmt: skip
    ]
    for body in rules:
        assert (await api.post("/api/v1/alerts/rules", json=body, headers=admin)).status_code == 201
    for latency in (100.0, 900.0, 950.0):
        await call(publisher, slow, latency=latency)
    ten_min_ago = (datetime.now(UTC) - timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    await publisher.publish(registry_events.server_status(sick, "unhealthy", time=ten_min_ago))

    async def firing_count() -> bool:
        return (await alerts_of(api, people.admin, state="firing"))["total"] == 2

    await until(firing_count)
    found = {a["server"]: a for a in (await alerts_of(api, people.admin, state="firing"))["items"]}
    assert found[slow]["value"] > 500 and found[slow]["kind"] == "latency_p95"
    assert found[sick]["value"] >= 10 and found[sick]["kind"] == "server_unhealthy"
    await publisher.publish(registry_events.server_status(sick, "healthy"))

    async def sick_resolved() -> bool:
        return (await alerts_of(api, people.admin, state="resolved", server=sick))["total"] == 1

    await until(sick_resolved)
    assert await fetchval("SELECT count(*) FROM audit.alerts WHERE server = $1", slow) == 1


async def owned_by(
    api: httpx.AsyncClient, publisher: busmod.Bus, people: People, server: str, org: str
) -> None:
    """Publish that `server` is `org`'s (as the registry does) and wait until audit stored it."""
    data = {"server": server, "server_id": str(uuid.uuid4()), "version": 1, "changed": []}
    event = Event(type="registry.server.created", source="registry", data=data, org=org)
    await publisher.publish(event)

    async def stored() -> bool:
        params = {"target": server}
        found = await api.get("/api/v1/activity", params=params, headers=bearer(people.admin))
        return found.json()["total"] > 0

    await until(stored)


async def test_an_org_rule_counts_only_its_orgs_calls_and_only_its_admins_see_the_alert(
    api: httpx.AsyncClient, publisher: busmod.Bus, people: People
) -> None:
    server = unique("shared")
    body = {"name": unique("rule"), "kind": "error_rate", "server": server, "threshold": 0.4,
            "org": people.org_a["id"]}  # fmt: skip
    alice = bearer(people.alice.token)
    resp = await api.post("/api/v1/alerts/rules", json=body, headers=alice)
    assert resp.status_code == 404  # a server audit does not know as org A's is not there
    await owned_by(api, publisher, people, server, people.org_a["id"])
    resp = await api.post("/api/v1/alerts/rules", json=body, headers=alice)
    assert resp.status_code == 201
    theirs = unique("theirs")
    await owned_by(api, publisher, people, theirs, people.org_b["id"])
    resp = await api.post(
        "/api/v1/alerts/rules", json={**body, "name": unique("r"), "server": theirs}, headers=alice
    )
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_FOUND"
    for _ in range(4):  # org B's errors would make the rate 5/6
        await call(publisher, server, "error", org=people.org_b["id"])
    await call(publisher, server, "ok", org=people.org_a["id"])
    await call(publisher, server, "error", org=people.org_a["id"])

    async def fired() -> list[dict[str, Any]]:
        return (await alerts_of(api, people.alice.token, server=server))["items"]

    (alert,) = await until(fired)
    assert alert["value"] == 0.5 and alert["org"] == people.org_a["id"]
    assert (await alerts_of(api, people.carol.token, server=server))["total"] == 0
    resp = await api.get("/api/v1/alerts", headers=bearer(people.bob.token))
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "FORBIDDEN"


async def test_deleting_a_firing_rule_resolves_its_alert_and_keeps_it(
    api: httpx.AsyncClient, publisher: busmod.Bus, people: People
) -> None:
    admin = bearer(people.admin)
    server = unique("gone")
    body = {"name": unique("rule"), "kind": "latency_p95", "server": server, "threshold": 10}
    rule = (await api.post("/api/v1/alerts/rules", json=body, headers=admin)).json()
    await call(publisher, server, latency=50.0)

    async def firing() -> bool:
        return (await alerts_of(api, people.admin, state="firing", server=server))["total"] == 1

    await until(firing)
    assert (
        await api.delete(f"/api/v1/alerts/rules/{rule['id']}", headers=admin)
    ).status_code == 204
    kept = await alerts_of(api, people.admin, server=server)
    assert kept["total"] == 1
    assert (kept["items"][0]["state"], kept["items"][0]["rule_id"]) == ("resolved", None)


async def test_a_webhook_the_ssrf_rules_refuse_is_never_posted_and_says_so(
    audit_pool: Any, receiver: tuple[str, asyncio.Queue[dict[str, Any]]]
) -> None:
    url, hooks = receiver
    async with audit_pool.acquire() as conn:
        row = await alert_store.insert_alert(conn, {
            "rule_id": None, "rule_name": unique("r"), "kind": "error_rate", "value": 1.0,
            "threshold": 0.5, "window_minutes": 5, "message": "m", "fired_at": datetime.now(UTC),
        })  # fmt: skip
    event = ALERT_FIRED.event(alerts.payload(row), source="audit")
    for hook_url in (
        url,
        url.replace("127.0.0.1", "2130706433"),
        url.replace("127.0.0.1", "[::1]"),
    ):
        timeout = aiohttp.ClientTimeout(total=2)
        async with Guard([]).session(timeout=timeout) as http:  # loopback not allowlisted
            await alerts.post_webhook(
                http, audit_pool, alerts.Notification(hook_url, row["id"], event)
            )
        async with audit_pool.acquire() as conn:
            status = await conn.fetchval(
                "SELECT webhook_status FROM audit.alerts WHERE id = $1", row["id"]
            )
        assert status.startswith("fired: ") and not status.endswith(("204", "200")), status
    assert hooks.empty()
