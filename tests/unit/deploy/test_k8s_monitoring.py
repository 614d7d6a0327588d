"""The overlays ship deploy/monitoring: dashboards, ServiceMonitor, rules as a PrometheusRule."""

from __future__ import annotations

import pytest
import yaml

from tests.support.k8s_manifests import objects, rendered
from tests.support.promql import DASHBOARDS, RULES

OVERLAYS = ("overlays/dev", "overlays/prod", "overlays/dev+gvisor")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_prometheus_rule_carries_the_groups_of_alerts_rules_yml(overlay: str) -> None:
    rule = objects(overlay, "PrometheusRule")["switchboard"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_ships_every_dashboard_and_the_service_monitor(overlay: str) -> None:
    dashboards = objects(overlay, "ConfigMap")["switchboard-dashboards"]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert sorted(dashboards["data"]) == sorted(p.name for p in DASHBOARDS.glob("*.json"))
    for path in DASHBOARDS.glob("*.json"):
        assert dashboards["data"][path.name] == path.read_text()
    monitor = objects(overlay, "ServiceMonitor")["switchboard"]
    namespace = objects(overlay, "Deployment")["gateway"]["metadata"]["namespace"]
    assert dashboards["metadata"]["namespace"] == monitor["metadata"]["namespace"] == namespace


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_nats_exporter_runs_beside_nats_on_the_monitoring_port_nats_enables(
    overlay: str,
) -> None:
    pod = objects(overlay, "StatefulSet")["nats"]["spec"]["template"]["spec"]
    nats, exporter = pod["containers"]
    assert nats["name"] == "nats" and exporter["name"] == "nats-exporter"
    assert {"name": "monitor", "containerPort": 8222} in nats["ports"]
    maps = objects(overlay, "ConfigMap")
    config = next(m for name, m in maps.items() if name.startswith("nats-config"))
    assert "http_port: 8222" in config["data"]["nats.conf"]
    assert exporter["args"][-1] == "http://localhost:8222"
    assert "-jsz=all" in exporter["args"]
    [port] = exporter["ports"]
    monitor = objects(overlay, "PodMonitor")["switchboard-nats"]
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == port["name"]
    policy = objects(overlay, "NetworkPolicy")["nats-exporter"]
    assert policy["spec"]["ingress"][0]["ports"] == [
        {"protocol": "TCP", "port": port["containerPort"]}
    ]


def test_dev_runs_postgres_exporter_on_a_key_its_secret_has() -> None:
    deployment = objects("overlays/dev", "Deployment")["postgres-exporter"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    [var] = container["env"]
    ref = var["valueFrom"]["secretKeyRef"]
    secret = next(s for n, s in objects("overlays/dev", "Secret").items()
                  if n.startswith(ref["name"]))  # fmt: skip
    assert ref["key"] in secret["data"]
    assert "switchboard-postgres" in objects("overlays/dev", "PodMonitor")
    assert "postgres-exporter" not in objects("overlays/prod", "Deployment")


def test_prod_has_cloudnativepg_export_its_own_metrics() -> None:
    cluster = objects("overlays/prod", "Cluster")["postgres"]
    assert cluster["spec"]["monitoring"]["enablePodMonitor"] is True
    policy = objects("overlays/prod", "NetworkPolicy")["postgres-metrics"]
    assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 9187}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_third_party_images_are_pinned_to_a_version(overlay: str) -> None:
    images = [
        c["image"]
        for d in rendered()[overlay]
        if d["kind"] in ("Deployment", "StatefulSet")
        for c in d["spec"]["template"]["spec"]["containers"]
    ]
    for image in images:
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", image


def test_prod_keeps_three_copies_of_each_stream_and_dev_one() -> None:
    def platform(overlay: str) -> dict[str, str]:
        return next(m for n, m in objects(overlay, "ConfigMap").items()
                    if n.startswith("switchboard-platform"))["data"]  # fmt: skip

    assert platform("overlays/prod")["NATS_STREAM_REPLICAS"] == "3"
    assert objects("overlays/prod", "StatefulSet")["nats"]["spec"]["replicas"] == 3
    assert platform("overlays/dev")["NATS_STREAM_REPLICAS"] == "1"
    assert objects("overlays/dev", "StatefulSet")["nats"]["spec"]["replicas"] == 1
