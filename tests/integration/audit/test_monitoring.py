"""Monitoring: status from registry events, metrics from rollups, health detail, retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from libs.common import bus as busmod
from libs.common.events import Event
from libs.devstack.harness import until
from services.audit import records
from services.audit.store import calls
from tests.integration.audit import registry_events
from tests.integration.audit.conftest import People, bearer


def row(server: str, status: str, latency: float, at: datetime) -> dict:
    """A tool-call row at `at`."""
    event = Event(
        type="gateway.tool.called",
        source="gateway",
        data={"server": server, "tool": "t", "status": status, "latency_ms": latency},
    )
    return records.call_row(event, "none", at)


async def test_status_counts_servers_from_registry_events_and_rates_from_rollups(
    api: httpx.AsyncClient,
    audit_pool: asyncpg.Pool,
    publisher: busmod.Bus,
    people: People,
    clean: None,
) -> None:
    for server, status in (("a", "healthy"), ("b", "healthy"), ("c", "unhealthy"), ("a", "up")):
        await publisher.publish(registry_events.server_status(server, status))
    now = datetime.now(UTC)
    async with audit_pool.acquire() as conn:
        for latency, status in ((10, "ok"), (20, "ok"), (30, "error"), (40, "ok"), (50, "ok")):
            await calls.insert_call(conn, row("a", status, latency, now - timedelta(minutes=1)))
        await calls.insert_call(conn, row("a", "ok", 999, now - timedelta(minutes=30)))

    async def status() -> dict | None:
        resp = await api.get("/api/v1/monitoring/status", headers=bearer(people.admin))
        body = resp.json()
        return body if body["servers"]["total"] == 3 and body["servers"]["by_status"].get(
            "up") else None  # fmt: skip

    body = await until(status)
    assert (body["servers"]["healthy"], body["servers"]["unhealthy"]) == (2, 1)
    perf = body["performance"]
    assert perf["requests"] == 5
    assert perf["requests_per_minute"] == 1.0
    assert perf["avg_latency_ms"] == 30.0
    assert perf["error_rate"] == 0.2


async def test_metrics_buckets_match_hand_computed_rollups(
    api: httpx.AsyncClient, audit_pool: asyncpg.Pool, people: People, clean: None
) -> None:
    now = datetime.now(UTC)
    # two whole hours back: every row is in the past even in the first minute of an hour
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    async with audit_pool.acquire() as conn:
        for minute, latency, status in ((1, 10, "ok"), (2, 30, "error"), (61, 100, "ok")):
            at = hour - timedelta(hours=1) + timedelta(minutes=minute)
            await calls.insert_call(conn, row("m", status, latency, at))
    resp = await api.get(
        "/api/v1/monitoring/metrics?timeRange=24h&granularity=1h&metrics=requests,errors,"
        "avg_latency_ms,max_latency_ms",
        headers=bearer(people.admin),
    )
    assert resp.status_code == 200
    points = {p["time"]: p for p in resp.json()["points"]}
    assert len(points) in (24, 25)
    key = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    first = points[key(hour - timedelta(hours=1))]
    assert first == {
        "time": key(hour - timedelta(hours=1)),
        "requests": 2,
        "errors": 1,
        "avg_latency_ms": 20.0,
        "max_latency_ms": 30.0,
    }
    assert points[key(hour)]["requests"] == 1
    assert sum(p["requests"] for p in points.values()) == 3


async def test_bad_metrics_parameters_are_422_and_non_admins_403(
    api: httpx.AsyncClient, people: People
) -> None:
    for params, field in (
        ("timeRange=2y", "timeRange"),
        ("granularity=7s", "granularity"),
        ("metrics=cpu", "metrics"),
        ("timeRange=30d&granularity=1m", "granularity"),
    ):
        resp = await api.get(f"/api/v1/monitoring/metrics?{params}", headers=bearer(people.admin))
        assert resp.status_code == 422, params
        assert field in resp.json()["error"]["details"]["fields"]
    for path in ("/api/v1/monitoring/metrics", "/api/v1/monitoring/status",
                 "/api/v1/health/detail"):  # fmt: skip
        resp = await api.get(path, headers=bearer(people.alice.token))
        assert resp.status_code == 403
        assert resp.json()["error"]["code"] == "FORBIDDEN"
        assert (await api.get(path)).status_code == 401


async def test_health_detail_reports_postgres_nats_and_consumer_lag(
    api: httpx.AsyncClient, people: People
) -> None:
    resp = await api.get("/api/v1/health/detail", headers=bearer(people.admin))
    assert resp.status_code == 200
    body = resp.json()
    assert body["postgres"]["status"] == "up"
    assert body["nats"]["status"] == "up"
    assert body["consumer"]["durable"] == "audit-store"
    assert isinstance(body["consumer"]["pending"], int)
    assert {s["service"] for s in body["services"]} >= {"audit"}


async def test_the_dashboard_shows_what_the_caller_may_see(
    api: httpx.AsyncClient, audit_pool: asyncpg.Pool, people: People, clean: None
) -> None:
    now = datetime.now(UTC)
    async with audit_pool.acquire() as conn:
        await calls.insert_call(conn, row("d", "ok", 5, now - timedelta(minutes=2)))
    resp = await api.get("/api/v1/dashboard", headers=bearer(people.admin))
    assert resp.status_code == 200
    assert resp.json()["calls_24h"]["calls"] == 1
    resp = await api.get("/api/v1/dashboard", headers=bearer(people.bob.token))
    assert resp.json()["calls_24h"]["calls"] == 0


async def test_retention_deletes_only_rows_older_than_the_setting(
    api: httpx.AsyncClient, audit_pool: asyncpg.Pool, people: People, clean: None
) -> None:
    now = datetime.now(UTC)
    async with audit_pool.acquire() as conn:
        for days in (1, 89, 91, 200):
            await calls.insert_call(conn, row("r", "ok", 1, now - timedelta(days=days)))
    resp = await api.post("/api/v1/audit/retention/run", headers=bearer(people.alice.token))
    assert resp.status_code == 403
    resp = await api.post("/api/v1/audit/retention/run", headers=bearer(people.admin))
    assert resp.status_code == 200
    assert resp.json()["deleted"]["tool_calls"] == 2
    assert resp.json()["deleted"]["call_rollups"] == 2
    async with audit_pool.acquire() as conn:
        left = await conn.fetchval("SELECT count(*) FROM audit.tool_calls WHERE server = 'r'")
    assert left == 2
