"""Queries of calls and activity: filters, stats and visibility against hand-computed values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson
import pytest

from libs.common.events import Event
from services.audit import records, store
from services.audit.store import calls
from tests.integration.audit.conftest import People, bearer

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def call(server: str, tool: str, status: str, latency: float, who: str, org: str, minute: int):
    """A tool-call row at T0 + minute."""
    event = Event(
        type="gateway.tool.called",
        source="gateway",
        data={
            "server": server,
            "tool": tool,
            "status": status,
            "latency_ms": latency,
            "principal_id": who,
            "principal_name": f"name-{who}",
            "org": org,
            "team": "team-1",
            "error_message": "boom" if status == "error" else None,
        },
    )
    return records.call_row(event, "keys", T0 + timedelta(minutes=minute))


@pytest.fixture
async def fixed(audit_pool: asyncpg.Pool, people: People, clean: None) -> dict[str, str]:
    """Eight calls on two servers by two principals in org A, one in org B."""
    a, b = people.org_a["id"], people.org_b["id"]
    bob, alice, carol = people.bob.id, people.alice.id, people.carol.id
    rows = [
        call("alpha", "search", "ok", 10, bob, a, 0),
        call("alpha", "search", "ok", 20, bob, a, 0),
        call("alpha", "search", "error", 30, alice, a, 1),
        call("alpha", "fetch", "ok", 40, alice, a, 1),
        call("alpha", "fetch", "ok", 50, alice, a, 2),
        call("beta", "run", "denied", 100, bob, a, 2),
        call("beta", "run", "ok", 200, carol, b, 3),
        call("beta", "run", "error", 300, carol, b, 3),
    ]
    async with audit_pool.acquire() as conn:
        for row in rows:
            await calls.insert_call(conn, row)
    return {"first": rows[0]["id"], "carol": rows[6]["id"]}


async def test_the_admin_lists_every_call_newest_first_with_list_fields(
    api: httpx.AsyncClient, people: People, fixed: dict[str, str]
) -> None:
    resp = await api.get("/api/v1/audit/calls?page_size=3", headers=bearer(people.admin))
    assert resp.status_code == 200
    body = resp.json()
    assert (body["total"], body["page"], body["page_size"], body["total_pages"]) == (8, 1, 3, 3)
    latencies = [i["latency_ms"] for i in body["items"]]
    assert sorted(latencies[:2]) == [200, 300]  # minute 3, then minute 2
    assert latencies[2] in (50, 100)


async def test_filters_narrow_calls_to_hand_counted_totals(
    api: httpx.AsyncClient, people: People, fixed: dict[str, str]
) -> None:
    cases = {
        "server=alpha": 5,
        "server=alpha&tool=search": 3,
        "status=error": 2,
        f"principal={people.alice.id}": 3,
        f"org={people.org_b['id']}": 2,
        "team=team-1": 8,
        "since=2026-01-01T12:02:00Z": 4,
        "since=2026-01-01T12:01:00Z&until=2026-01-01T12:03:00Z": 4,
        "q=boom": 2,
        "server_name=beta&status=ok": 1,
    }
    for params, total in cases.items():
        resp = await api.get(f"/api/v1/audit/calls?{params}", headers=bearer(people.admin))
        assert resp.status_code == 200, params
        assert resp.json()["total"] == total, params


async def test_sorting_by_latency_ascending_orders_the_page(
    api: httpx.AsyncClient, people: People, fixed: dict[str, str]
) -> None:
    resp = await api.get(
        "/api/v1/audit/calls?sort=latency_ms&order=asc&page=2&page_size=3",
        headers=bearer(people.admin),
    )
    assert [i["latency_ms"] for i in resp.json()["items"]] == [40, 50, 100]


async def test_bad_query_parameters_answer_422_with_the_field(
    api: httpx.AsyncClient, people: People, fixed: dict[str, str]
) -> None:
    for params, field in (
        ("sort=password", "sort"),
        ("status=maybe", "status"),
        ("since=yesterday", "since"),
        ("page_size=1000", "page_size"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
    ):
        resp = await api.get(f"/api/v1/audit/calls?{params}", headers=bearer(people.admin))
        assert resp.status_code == 422, params
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
        assert field in resp.json()["error"]["details"]["fields"]


async def test_stats_give_hand_computed_counts_rates_and_percentiles(
    api: httpx.AsyncClient, people: People, fixed: dict[str, str]
) -> None:
    resp = await api.get(
        "/api/v1/audit/stats?since=2026-01-01T00:00:00Z&until=2026-01-02T00:00:00Z",
        headers=bearer(people.admin),
    )
    assert resp.status_code == 200
    body = resp.json()
    assert (body["calls"], body["ok"], body["errors"], body["denied"]) == (8, 5, 2, 1)
    assert body["error_rate"] == 0.25
    alpha = next(s for s in body["by_server"] if s["server"] == "alpha")
    # latencies 10 20 30 40 50: p50 = 30; p95 = 40 + 0.8 * 10; p99 = 40 + 0.96 * 10
    assert (alpha["calls"], alpha["errors"], alpha["error_rate"]) == (5, 1, 0.2)
    assert (alpha["p50_ms"], alpha["p95_ms"], alpha["p99_ms"], alpha["avg_ms"]) == (
        30,
        48,
        49.6,
        30,
    )
    assert body["top_tools"][0] == {**body["top_tools"][0], "server": "alpha", "tool": "search"}
    assert body["top_tools"][0]["calls"] == 3
    busiest = body["top_principals"][0]
    assert (busiest["principal_id"], busiest["calls"]) in ((people.bob.id, 3), (people.alice.id, 3))


async def test_an_org_admin_sees_their_org_and_a_member_only_their_own_calls(
    api: httpx.AsyncClient, people: People, fixed: dict[str, str]
) -> None:
    totals = {}
    for name in ("alice", "bob", "carol"):
        token = getattr(people, name).token
        resp = await api.get("/api/v1/audit/calls", headers=bearer(token))
        assert resp.status_code == 200
        totals[name] = resp.json()["total"]
    assert totals == {"alice": 6, "bob": 3, "carol": 2}
    resp = await api.get(f"/api/v1/audit/calls/{fixed['carol']}", headers=bearer(people.bob.token))
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"
    resp = await api.get(
        f"/api/v1/audit/calls/{fixed['carol']}", headers=bearer(people.carol.token)
    )
    assert resp.status_code == 200
    assert resp.json()["tool"] == "run"


async def test_without_a_credential_the_calls_are_401(api: httpx.AsyncClient, fixed: dict) -> None:
    for path in ("/api/v1/audit/calls", "/api/v1/audit/stats", "/api/v1/activity"):
        resp = await api.get(path)
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_export_streams_the_filtered_calls_as_csv_and_ndjson(
    api: httpx.AsyncClient, people: People, fixed: dict[str, str]
) -> None:
    resp = await api.get(
        "/api/v1/audit/calls/export?format=csv&server=alpha&sort=latency_ms&order=asc",
        headers=bearer(people.admin),
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    lines = resp.text.strip().splitlines()
    assert lines[0].startswith("id,time,server,tool,status")
    assert len(lines) == 6
    resp = await api.get(
        "/api/v1/audit/calls/export?format=ndjson", headers=bearer(people.bob.token)
    )
    docs = [orjson.loads(line) for line in resp.text.splitlines()]
    assert len(docs) == 3
    assert {d["principal_id"] for d in docs} == {people.bob.id}
    resp = await api.get("/api/v1/audit/calls/export?format=xml", headers=bearer(people.admin))
    assert resp.status_code == 422


async def activity(pool: asyncpg.Pool, people: People) -> None:
    """Five admin changes: three in org A (two by alice), two in org B."""
    a, b = people.org_a["id"], people.org_b["id"]
    specs = [
        ("registry.server.created", people.alice.id, a, {"server": "alpha"}),
        ("registry.server.updated", people.alice.id, a, {"server": "alpha", "before": {"x": 1}}),
        ("auth.team.created", people.bob.id, a, {"name": "t"}),
        ("registry.server.created", people.carol.id, b, {"server": "beta"}),
        ("auth.key.revoked", people.carol.id, b, {"id": "k1"}),
    ]
    async with pool.acquire() as conn:
        for i, (kind, actor, org, data) in enumerate(specs):
            event = Event(
                type=kind,
                source=kind.split(".")[0],
                data=data,
                actor=actor,
                org=org,
                time=(T0 + timedelta(minutes=i)).isoformat(),
            )
            await store.insert_event(conn, event, **records.activity_fields(event))


async def test_activity_filters_and_visibility(
    api: httpx.AsyncClient, audit_pool: asyncpg.Pool, people: People, clean: None
) -> None:
    await activity(audit_pool, people)
    admin = bearer(people.admin)
    cases = {
        "": 5,
        "action=registry.server.created": 2,
        "action=registry.*": 3,
        f"actor_id={people.alice.id}": 2,
        f"org={people.org_b['id']}": 2,
        "since=2026-01-01T12:03:00Z": 2,
        "target=alpha": 2,
        "limit=2&offset=2": 5,
    }
    for params, total in cases.items():
        resp = await api.get(f"/api/v1/audit/events?{params}", headers=admin)
        assert resp.status_code == 200, params
        assert resp.json()["total"] == total, params
    resp = await api.get("/api/v1/activity", headers=bearer(people.alice.token))
    assert resp.json()["total"] == 3
    resp = await api.get("/api/v1/activity", headers=bearer(people.bob.token))
    assert resp.json()["total"] == 1
    resp = await api.get("/api/v1/activity/recent?limit=2", headers=admin)
    assert [i["action"] for i in resp.json()["items"]] == [
        "auth.key.revoked",
        "registry.server.created",
    ]
    resp = await api.get("/api/v1/activity/stats", headers=admin)
    stats = resp.json()
    assert stats["total"] == 5
    assert stats["by_action"][0] == {"action": "registry.server.created", "count": 2}


async def test_admin_and_org_audit_variants_answer_by_role(
    api: httpx.AsyncClient, audit_pool: asyncpg.Pool, people: People, clean: None
) -> None:
    await activity(audit_pool, people)
    a, b = people.org_a, people.org_b
    expect = [
        ("/api/v1/admin/audit", people.admin, 200, 5),
        (f"/api/v1/admin/audit/users/{people.carol.id}", people.admin, 200, 2),
        (f"/api/v1/admin/audit/orgs/{a['id']}", people.admin, 200, 3),
        ("/api/v1/admin/audit", people.alice.token, 403, None),
        (f"/api/v1/admin/audit/orgs/{a['id']}", people.alice.token, 403, None),
        (f"/api/v1/orgs/{a['id']}/audit-events", people.alice.token, 200, 3),
        (f"/api/v1/orgs/{a['slug']}/audit-events", people.alice.token, 200, 3),
        (f"/api/v1/orgs/{a['id']}/audit-events", people.bob.token, 403, None),
        (f"/api/v1/orgs/{a['id']}/audit-events", people.carol.token, 404, None),
        (f"/api/v1/orgs/{b['id']}/audit-events", people.carol.token, 200, 2),
    ]
    for path, token, status, total in expect:
        resp = await api.get(path, headers=bearer(token))
        assert resp.status_code == status, path
        if total is None:
            assert resp.json()["error"]["code"] == {403: "FORBIDDEN", 404: "NOT_FOUND"}[status]
        else:
            assert resp.json()["total"] == total, path


async def test_an_unknown_call_id_is_404(api: httpx.AsyncClient, people: People) -> None:
    for ref in (str(uuid.uuid4()), "not-a-uuid"):
        resp = await api.get(f"/api/v1/audit/calls/{ref}", headers=bearer(people.admin))
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "NOT_FOUND"
