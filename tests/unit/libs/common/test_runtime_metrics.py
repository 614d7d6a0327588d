"""Pool and NATS figures read at scrape time."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import REGISTRY

from libs.common import runtime_metrics


class FakePool:
    """An asyncpg pool's size accessors (the collector reads nothing else)."""

    def __init__(self, size: int, idle: int, most: int) -> None:
        self.size, self.idle, self.most = size, idle, most

    def get_size(self) -> int:
        return self.size

    def get_idle_size(self) -> int:
        return self.idle

    def get_max_size(self) -> int:
        return self.most


class ClosedPool:
    """A pool whose accessors raise (closing)."""

    def get_size(self) -> int:
        raise RuntimeError("closed")


def test_pool_figures() -> None:
    assert runtime_metrics.pool_figures(FakePool(5, 2, 10)) == {
        "size": 5,
        "idle": 2,
        "in_use": 3,
        "max": 10,
    }
    assert runtime_metrics.pool_figures(ClosedPool())["in_use"] == 0


def test_collector_reports_tracked_services_until_untracked() -> None:
    pool = FakePool(4, 1, 8)
    bus = SimpleNamespace(nc=SimpleNamespace(is_connected=True, stats={"reconnects": 3}))
    runtime_metrics.track("unit-svc", pool, bus)
    try:
        sample = REGISTRY.get_sample_value
        assert (
            sample("switchboard_db_pool_connections", {"service": "unit-svc", "state": "in_use"})
            == 3
        )
        assert (
            sample("switchboard_db_pool_connections", {"service": "unit-svc", "state": "idle"}) == 1
        )
        assert sample("switchboard_db_pool_max_connections", {"service": "unit-svc"}) == 8
        assert sample("switchboard_nats_connected", {"service": "unit-svc"}) == 1
        assert sample("switchboard_nats_reconnects_total", {"service": "unit-svc"}) == 3
        bus.nc.is_connected = False
        assert sample("switchboard_nats_connected", {"service": "unit-svc"}) == 0
        runtime_metrics.untrack("unit-svc", FakePool(0, 0, 0))  # not the tracked pool: kept
        assert sample("switchboard_nats_connected", {"service": "unit-svc"}) == 0
    finally:
        runtime_metrics.untrack("unit-svc", pool)
    assert REGISTRY.get_sample_value("switchboard_nats_connected", {"service": "unit-svc"}) is None


def test_the_service_started_last_is_reported_until_it_stops() -> None:
    first, second = FakePool(1, 1, 5), FakePool(2, 0, 7)
    bus = SimpleNamespace(nc=SimpleNamespace(is_connected=True, stats={"reconnects": 0}))
    runtime_metrics.track("unit-two", first, bus)
    runtime_metrics.track("unit-two", second, bus)
    try:
        sample = REGISTRY.get_sample_value
        assert sample("switchboard_db_pool_max_connections", {"service": "unit-two"}) == 7
        runtime_metrics.untrack("unit-two", second)
        assert sample("switchboard_db_pool_max_connections", {"service": "unit-two"}) == 5
    finally:
        runtime_metrics.untrack("unit-two", first)
        runtime_metrics.untrack("unit-two", second)
    assert (
        REGISTRY.get_sample_value("switchboard_db_pool_max_connections", {"service": "unit-two"})
        is None
    )
