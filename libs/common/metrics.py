"""Prometheus metrics shared by every service: HTTP requests by route template, and /metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount

QUIET_ROUTES = {"/healthz", "/readyz", "/metrics"}
UNMATCHED = "<unmatched>"

HTTP_REQUESTS = Counter(
    "switchboard_http_requests_total",
    "HTTP requests handled, by route template and status.",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "switchboard_http_request_duration_seconds",
    "HTTP request latency, by route template.",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def observe_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    """Count one request and record its latency."""
    HTTP_REQUESTS.labels(service, method, route, str(status)).inc()
    HTTP_DURATION.labels(service, method, route).observe(seconds)


def route_template(routes: Any, scope: dict[str, Any], prefix: str = "") -> str:
    """The template of the route matching `scope` (e.g. /api/v1/servers/{name}), not the path."""
    for route in routes:
        try:
            match, child = route.matches(scope)
        except Exception:  # a route that cannot judge this scope is simply not it
            continue
        if match == Match.NONE:
            continue
        if isinstance(route, Mount):
            sub = dict(scope)
            sub.update(child)
            return route_template(route.routes, sub, prefix + route.path)
        return prefix + getattr(route, "path", "")
    return prefix + "/*" if prefix else UNMATCHED


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus exposition of the default registry (includes process metrics)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
