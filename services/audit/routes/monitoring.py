"""Health detail, monitoring status and metrics, the dashboard and the retention trigger."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common import db
from libs.common.authn import authenticate, require_platform_admin
from libs.common.errors import Unprocessable
from libs.common.http import json_response
from libs.common.pagination import ListQuery, page_body
from services.audit import health, monitoring, queries, retention, schemas, store
from services.audit.consumers import DURABLE
from services.audit.context import context_of
from services.audit.store import activity, calls, logs, servers
from services.audit.store.activity import ActivityFilters
from services.audit.store.calls import CallFilters
from services.audit.visibility import scope_for

STATUS_WINDOW_MIN = 5
STARTED = time.monotonic()


async def health_detail(request: Request) -> Response:
    """Platform health plus Postgres, NATS and the audit consumer's lag (platform admins)."""
    require_platform_admin(await authenticate(request))
    bus = context_of(request).bus
    lag: dict[str, object] = {"durable": DURABLE}
    try:
        info = await bus.js.consumer_info(bus.stream, DURABLE)
        lag |= {"pending": info.num_pending, "ack_pending": info.num_ack_pending,
                "redelivered": info.num_redelivered}  # fmt: skip
    except Exception as exc:
        lag |= {"error": str(exc) or type(exc).__name__}
    async with context_of(request).pool.acquire() as conn:
        rows = await store.list_instances(conn, datetime.now(UTC) - timedelta(hours=1))
    body = health.platform_health(rows)
    body["postgres"] = {"status": "up" if await db.ping(context_of(request).pool) else "down"}
    body["nats"] = {"status": "up" if bus.connected else "down", "stream": bus.stream}
    body["consumer"] = lag
    return json_response(body)


async def monitoring_status(request: Request) -> Response:
    """Servers total/healthy/unhealthy, requests per minute, average latency and error rate."""
    require_platform_admin(await authenticate(request))
    now = datetime.now(UTC)
    async with context_of(request).pool.acquire() as conn:
        rows = await servers.list_server_status(conn)
        totals = await calls.rollup_totals(conn, now - timedelta(minutes=STATUS_WINDOW_MIN), now)
    settings = context_of(request).settings
    return json_response(
        {
            "system": {"version": settings.version, "uptime_s": round(time.monotonic() - STARTED)},
            "servers": monitoring.server_counts(rows),
            "performance": monitoring.performance(totals, STATUS_WINDOW_MIN),
        }
    )


async def monitoring_metrics(request: Request) -> Response:
    """Time series from the per-minute rollups (`timeRange`, `granularity`, `metrics`, `server`)."""
    require_platform_admin(await authenticate(request))
    span, step, names = monitoring.metrics_query(dict(request.query_params))
    end = datetime.now(UTC)
    start = end - span
    server = request.query_params.get("server") or None
    async with context_of(request).pool.acquire() as conn:
        rows = await calls.rollup_series(conn, start, end, step, server)
    return json_response(
        {
            "timeRange": request.query_params.get("timeRange") or "1h",
            "granularity": request.query_params.get("granularity") or "1m",
            "metrics": list(names),
            "server": server,
            "points": monitoring.series(rows, start, end, step, names),
        }
    )


async def dashboard(request: Request) -> Response:
    """The first screen: servers, the last 24 h of calls the caller may see, recent activity."""
    principal = await authenticate(request)
    scope = scope_for(principal)
    since = datetime.now(UTC) - timedelta(days=1)
    async with context_of(request).pool.acquire() as conn:
        rows = await servers.list_server_status(conn)
        found = await calls.stats(conn, CallFilters(since=since), scope, 5)
        recent, _ = await activity.list_activity(conn, ActivityFilters(), scope, _recent_query())
    seen = context_of(request).hub.servers_for(principal, {r["server"]: r for r in rows})
    return json_response(
        {
            "servers": monitoring.server_counts(list(seen.values())),
            "calls_24h": schemas.agg_out(found["overall"]),
            "top_tools": [
                {"server": r["server"], "tool": r["tool"], "calls": r["calls"]}
                for r in found["by_tool"][:5]
            ],
            "recent_activity": [schemas.activity_out(r) for r in recent],
        }
    )


async def run_retention(request: Request) -> Response:
    """Run the retention purge now (platform admins); returns how many rows went."""
    require_platform_admin(await authenticate(request))
    settings = context_of(request).settings
    deleted = await retention.purge(
        context_of(request).pool, settings.retention_days, settings.retention_batch
    )
    return json_response({"retention_days": settings.retention_days, "deleted": deleted})


def _recent_query() -> ListQuery:
    """The five newest records."""
    return ListQuery(1, 5, "time", "desc")


MAX_LOG_LINES = 1000


def _log_filters(request: Request) -> logs.LogFilters:
    """`level` (minimum), `source` (a service), `since`/`until`, `limit` (1–1000, default 100)."""
    params = request.query_params
    problems: dict[str, str] = {}
    since, until = queries.time_range(request, problems)
    level = (params.get("level") or "").lower() or None
    if level == "warn":
        level = "warning"
    if level is not None and level not in logs.LEVELS:
        problems["level"] = "must be one of " + ", ".join(logs.LEVELS)
    source = params.get("source") or None
    if source is not None and source not in health.PLATFORM_SERVICES:
        problems["source"] = "must be one of " + ", ".join(health.PLATFORM_SERVICES)
    raw = params.get("limit", "100")
    limit = int(raw) if raw.isdigit() else 0
    if not 1 <= limit <= MAX_LOG_LINES:
        problems["limit"] = f"must be an integer from 1 to {MAX_LOG_LINES}"
    if problems:
        raise Unprocessable("Invalid log query.", details={"fields": problems})
    return logs.LogFilters(level, source, since, until, limit)


async def monitoring_logs(request: Request) -> Response:
    """The services' own WARNING+ log lines, newest first (the mcphub seed's monitoring/logs)."""
    require_platform_admin(await authenticate(request))
    filters = _log_filters(request)
    async with context_of(request).pool.acquire() as conn:
        rows, total = await logs.list_lines(conn, filters)
    items = [
        {**dict(r), "time": r["time"].isoformat().replace("+00:00", "Z"), "message": r["event"]}
        for r in rows
    ]
    return json_response(page_body(items, total, ListQuery(page=1, page_size=filters.limit)))


routes = [
    Route("/api/v1/health/detail", health_detail, methods=["GET"]),
    Route("/api/v1/monitoring/status", monitoring_status, methods=["GET"]),
    Route("/api/v1/monitoring/metrics", monitoring_metrics, methods=["GET"]),
    Route("/api/v1/monitoring/logs", monitoring_logs, methods=["GET"]),
    Route("/api/v1/dashboard", dashboard, methods=["GET"]),
    Route("/api/v1/audit/retention/run", run_retention, methods=["POST"]),
]
