"""Postgres pool and NATS client metrics of every service, read when Prometheus scrapes.

Nothing is added on the request path: the pool's sizes and the NATS client's counters are read
by a collector at scrape time; only a failed JetStream publish counts (its exception path)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

PUBLISH_ERRORS = Counter(
    "switchboard_nats_publish_errors_total",
    "JetStream publishes that failed (timeout, no stream, rejected), by service.",
    ["service"],
)

# service → [(asyncpg pool, Bus)]: one in production; tests may run two apps of one service in a
# process, and the one started last is reported until it stops
_SOURCES: dict[str, list[tuple[Any, Any]]] = {}


def track(service: str, pool: Any, bus: Any) -> None:
    """Report this service's pool and NATS connection from now on."""
    # the series exists at 0 before any failure, so increase() and alerts see it from the start
    PUBLISH_ERRORS.labels(service)
    _SOURCES.setdefault(service, []).append((pool, bus))


def untrack(service: str, pool: Any) -> None:
    """Stop reporting the pool (and its connection) tracked for `service`."""
    kept = [each for each in _SOURCES.get(service, []) if each[0] is not pool]
    if kept:
        _SOURCES[service] = kept
    else:
        _SOURCES.pop(service, None)


def pool_figures(pool: Any) -> dict[str, int]:
    """size, idle, in_use and max of an asyncpg pool (0s for a closing pool)."""
    try:
        size, idle, most = pool.get_size(), pool.get_idle_size(), pool.get_max_size()
    except Exception:
        return {"size": 0, "idle": 0, "in_use": 0, "max": 0}
    return {"size": size, "idle": idle, "in_use": max(size - idle, 0), "max": most}


class RuntimeCollector(Collector):
    """Pool and NATS figures of every tracked service."""

    def collect(self) -> Iterator[Any]:
        """One sample per tracked service and figure."""
        conns = GaugeMetricFamily(
            "switchboard_db_pool_connections",
            "Postgres pool connections by state (idle, in_use).",
            labels=["service", "state"],
        )
        most = GaugeMetricFamily(
            "switchboard_db_pool_max_connections",
            "Most connections the Postgres pool may open.",
            labels=["service"],
        )
        connected = GaugeMetricFamily(
            "switchboard_nats_connected", "1 while the NATS connection is up.", labels=["service"]
        )
        reconnects = CounterMetricFamily(
            "switchboard_nats_reconnects",
            "Times the NATS connection was re-established.",
            labels=["service"],
        )
        for service, tracked in sorted(_SOURCES.items()):
            pool, bus = tracked[-1]
            figures = pool_figures(pool)
            conns.add_metric([service, "idle"], figures["idle"])
            conns.add_metric([service, "in_use"], figures["in_use"])
            most.add_metric([service], figures["max"])
            nc = getattr(bus, "nc", None)
            connected.add_metric([service], 1 if nc is not None and nc.is_connected else 0)
            stats = getattr(nc, "stats", None) or {}
            reconnects.add_metric([service], stats.get("reconnects", 0))
        yield from (conns, most, connected, reconnects)


REGISTRY.register(RuntimeCollector())
