"""The periodic health loop: an upstream going down is reported within one interval."""

from __future__ import annotations

from typing import Any

from libs.devstack.harness import serving
from libs.devstack.harness.registry import registry_settings
from services.registry.app import create_app
from tests.support.upstreams import make_upstream, run_upstream

INTERVAL_S = 1.0


async def test_an_upstream_going_down_publishes_unhealthy_within_one_interval(
    api: Any, events: Any, port: int, pg_url: str, nats_url: str, namespace: str
) -> None:
    settings = registry_settings(
        pg_url,
        nats_url,
        namespace,
        REGISTRY_HEALTH_ENABLED="true",
        REGISTRY_HEALTH_INTERVAL_S=str(INTERVAL_S),
    )
    async with serving(create_app(settings)):
        async with run_upstream(make_upstream(), port=port) as url:
            resp = await api.post(
                "/api/v1/servers",
                json={"name": "weather", "transport": "streamable-http", "url": url},
            )
            assert resp.json()["status"] == "healthy"
        # one interval (+10% jitter), plus the discovery attempt and the outbox relay
        event = await events.wait_for(
            lambda e: e.type == "registry.server.status" and e.data["status"] == "unhealthy",
            timeout=INTERVAL_S * 1.1 + 2.5,
        )
        async with run_upstream(make_upstream(), port=port):
            back = await events.wait_for(
                lambda e: (
                    e.type == "registry.server.status"
                    and e.data["status"] == "healthy"
                    and e.data["previous"] == "unhealthy"
                ),
                timeout=INTERVAL_S * 1.1 + 2.5,
            )
    assert event.data["server"] == "weather" and event.data["error"]
    assert back.data["tool_count"] == 2


async def test_registry_metrics_count_servers_by_status_and_time_discoveries(
    api: Any, registry_url: str
) -> None:
    import httpx

    async with run_upstream(make_upstream()) as url:
        body = {"name": "weather", "transport": "streamable-http", "url": url}
        assert (await api.post("/api/v1/servers", json=body)).status_code == 201
    async with httpx.AsyncClient(base_url=registry_url) as c:
        text = (await c.get("/metrics")).text
    assert 'switchboard_registry_servers{status="healthy"} 1.0' in text
    assert "switchboard_registry_quarantined_tools 0.0" in text
    assert (
        'switchboard_registry_discovery_duration_seconds_count{outcome="ok",'
        'transport="streamable-http"}' in text
    )
