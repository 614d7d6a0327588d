"""Prometheus metrics shared by every service: HTTP requests by route template, and /metrics."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from libs.common import scraped

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


_REQUEST_CHILDREN: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}


def observe_request(service: str, method: str, route: str, status: int, seconds: float) -> None:
    """Count one request and record its latency.

    Children are bound once per label set: `.labels()` hashes and locks on every call."""
    key = (service, method, route, status)
    children = _REQUEST_CHILDREN.get(key)
    if children is None:
        children = _REQUEST_CHILDREN[key] = (
            HTTP_REQUESTS.labels(service, method, route, str(status)),
            HTTP_DURATION.labels(service, method, route),
        )
    children[0].inc()
    children[1].observe(seconds)


def matched_template(scope: dict[str, Any], root_path: str = "") -> str:
    """The template of the route the router matched, with the prefixes of any mounts on the way.

    The router leaves it in `scope["route"]`; UNMATCHED when none matched. Costs nothing per
    request."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        return UNMATCHED
    return scope.get("root_path", "")[len(root_path) :] + path


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus exposition of the default registry (includes process metrics).

    Figures read from Postgres or NATS (libs/common/scraped.py) are refreshed first when due."""
    await scraped.refresh_all()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
