"""Monitoring numbers: server health counts, request rates and the metric series from rollups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from libs.common.errors import Unprocessable

HEALTHY = ("healthy", "up", "ok", "running", "active")
TIME_RANGES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7),
               "30d": timedelta(days=30)}  # fmt: skip
GRANULARITIES = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
METRICS = ("requests", "errors", "denied", "error_rate", "avg_latency_ms", "max_latency_ms")
MAX_POINTS = 2000


def server_counts(rows: Sequence[asyncpg.Record]) -> dict[str, Any]:
    """Servers total, healthy, unhealthy, and the count by status."""
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    healthy = sum(n for s, n in by_status.items() if s in HEALTHY)
    return {
        "total": len(rows),
        "healthy": healthy,
        "unhealthy": len(rows) - healthy,
        "by_status": by_status,
    }


def performance(totals: asyncpg.Record, minutes: int) -> dict[str, Any]:
    """Requests per minute, average latency and error rate over the last `minutes`."""
    calls, errors = int(totals["calls"]), int(totals["errors"])
    return {
        "window_minutes": minutes,
        "requests": calls,
        "requests_per_minute": round(calls / minutes, 3),
        "avg_latency_ms": round(totals["latency_sum"] / calls, 3) if calls else None,
        "error_rate": round(errors / calls, 6) if calls else 0.0,
    }


def metrics_query(params: dict[str, str]) -> tuple[timedelta, int, tuple[str, ...]]:
    """Validate timeRange, granularity and metrics (422 naming the field)."""
    problems: dict[str, str] = {}
    span = TIME_RANGES.get(params.get("timeRange") or params.get("time_range") or "1h")
    if span is None:
        problems["timeRange"] = f"must be one of {', '.join(TIME_RANGES)}"
    step = GRANULARITIES.get(params.get("granularity") or "1m")
    if step is None:
        problems["granularity"] = f"must be one of {', '.join(GRANULARITIES)}"
    names = tuple(m.strip() for m in (params.get("metrics") or ",".join(METRICS)).split(",") if m)
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        problems["metrics"] = f"must be a comma-separated subset of {', '.join(METRICS)}"
    if span and step and span.total_seconds() / step > MAX_POINTS:
        problems["granularity"] = f"gives more than {MAX_POINTS} points for this timeRange"
    if problems:
        raise Unprocessable("Invalid metrics query.", details={"fields": problems})
    assert span is not None and step is not None
    return span, step, names


def series(
    rows: Sequence[asyncpg.Record], start: datetime, end: datetime, step: int, names: Sequence[str]
) -> list[dict[str, Any]]:
    """One point per bucket from start to end (empty buckets are zeros)."""
    found = {int(r["bucket"].timestamp()): r for r in rows}
    first = int(start.timestamp()) // step * step
    points = []
    for t in range(first, int(end.timestamp()), step):
        r = found.get(t)
        calls = int(r["calls"]) if r else 0
        errors = int(r["errors"]) if r else 0
        values = {
            "requests": calls,
            "errors": errors,
            "denied": int(r["denied"]) if r else 0,
            "error_rate": round(errors / calls, 6) if calls else 0.0,
            "avg_latency_ms": round(r["latency_sum"] / calls, 3) if calls else None,
            "max_latency_ms": round(r["latency_max"], 3) if r else None,
        }
        ts = datetime.fromtimestamp(t, tz=start.tzinfo).isoformat().replace("+00:00", "Z")
        points.append({"time": ts, **{n: values[n] for n in names}})
    return points
