"""Registry metrics (bounded labels: status, transport, outcome; never server names or ids)."""

from __future__ import annotations

import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from services.registry.store import servers, tools

STATUSES = ("healthy", "unhealthy", "unknown")

SERVERS = Gauge("switchboard_registry_servers", "Registered servers by health status.", ["status"])
QUARANTINED_TOOLS = Gauge(
    "switchboard_registry_quarantined_tools", "Tools waiting in quarantine for an approval."
)
DISCOVERY_SECONDS = Histogram(
    "switchboard_registry_discovery_duration_seconds",
    "Time to discover one server or source, by transport and outcome.",
    ["transport", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

HEALTH_CHECKS = Counter(
    "switchboard_registry_health_checks_total",
    "Periodic health checks: `probe` opens a session only, `full` lists and reconciles.",
    ["kind", "outcome"],
)


def observe_discovery(transport: str, ok: bool, seconds: float) -> None:
    """Record one discovery (transport is one of the five known values)."""
    DISCOVERY_SECONDS.labels(transport, "ok" if ok else "failed").observe(seconds)


def count_check(kind: str, ok: bool) -> None:
    """Count one periodic health check (`probe` or `full`)."""
    HEALTH_CHECKS.labels(kind, "ok" if ok else "failed").inc()


async def update_gauges(conn: asyncpg.Connection) -> None:
    """Recount servers by status and quarantined tools (two small aggregate queries)."""
    counts = await servers.count_by_status(conn)
    for status in STATUSES:
        SERVERS.labels(status).set(counts.get(status, 0))
    QUARANTINED_TOOLS.set(await tools.count_quarantined(conn))
