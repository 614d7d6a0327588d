"""deploy/monitoring as data: rules pass promtool, dashboards ask for metrics that exist.

The end-to-end check that every query returns data against a live stack is
tests/e2e/test_monitoring.py; here no service runs."""

from __future__ import annotations

import importlib
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import REGISTRY

from tests.support.promql import (
    DASHBOARDS,
    EXTERNAL_METRICS,
    MONITORING,
    alert_rules,
    dashboards,
    metric_name,
    panel_queries,
    selectors,
)

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
# every module that defines metrics (importing one opens nothing)
METRIC_MODULES = (
    "libs.common.metrics",
    "libs.common.runtime_metrics",
    "services.auth.metrics",
    "services.registry.metrics",
    "services.registry.catalog.rate",
    "services.registry.catalog.scans",
    "services.gateway.metrics",
    "services.sandbox.metrics",
    "services.audit.metrics",
    "services.audit.platform_metrics",
)
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "unknown": ("",),
}
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
SERVICES = ("auth", "registry", "gateway", "sandbox", "audit")


def exported_names() -> set[str]:
    """Every sample name the services' metric definitions can export."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool in deploy/monitoring."""
    return subprocess.run(
        [PROMTOOL, *args], cwd=MONITORING, capture_output=True, text=True, timeout=60
    )


def test_promtool_accepts_the_alert_rules() -> None:
    result = promtool("check", "rules", "alerts.rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_unit_tests_pass() -> None:
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_scrape_config() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_scrape_config_has_one_job_per_service_on_its_port() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {f"switchboard-{service}" for service in SERVICES}
    for port, service in enumerate(SERVICES, start=8101):
        job = jobs[f"switchboard-{service}"]
        assert job["metrics_path"] == "/metrics"
        [target] = [t for static in job["static_configs"] for t in static["targets"]]
        assert target.endswith(f":{port}")
    assert config["rule_files"] == ["alerts.rules.yml"]


def test_the_promtool_unit_tests_exercise_every_alert() -> None:
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert tested == {rule["alert"] for rule in alert_rules()}


@pytest.mark.parametrize("name", sorted(p.name for p in DASHBOARDS.glob("*.json")))
def test_each_dashboard_has_unique_panel_ids_and_ref_ids(name: str) -> None:
    board = dashboards()[name]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), ids
    assert board["uid"] and board["title"]
    for panel in board["panels"]:
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        assert all(target["expr"].strip() for target in panel["targets"]), panel["title"]


def test_the_five_dashboards_are_shipped_and_each_uid_is_unique() -> None:
    boards = dashboards()
    assert set(boards) == {f"{n}.json" for n in ("overview", "gateway", "sandbox", "audit")} | {
        "nats-postgres.json"
    }
    uids = [board["uid"] for board in boards.values()]
    assert len(uids) == len(set(uids))


def test_every_dashboard_query_reads_metrics_the_services_define() -> None:
    known = exported_names() | PROMETHEUS_OWN
    unknown = [
        (board, title, metric_name(selector))
        for board, title, expr in panel_queries()
        for selector in selectors(expr)
        if metric_name(selector) not in known
    ]
    assert unknown == []
    assert len(panel_queries()) >= 40


def test_every_alert_reads_metrics_the_services_define() -> None:
    known = exported_names() | PROMETHEUS_OWN | set(EXTERNAL_METRICS)
    unknown = [
        (rule["alert"], metric_name(selector))
        for rule in alert_rules()
        for selector in selectors(rule["expr"])
        if metric_name(selector) not in known
    ]
    assert unknown == []


def test_external_metrics_are_used_by_an_alert_and_none_is_a_services_own() -> None:
    read = {metric_name(s) for rule in alert_rules() for s in selectors(rule["expr"])}
    assert set(EXTERNAL_METRICS) <= read
    assert not set(EXTERNAL_METRICS) & exported_names()
    assert all(reason.strip() for reason in EXTERNAL_METRICS.values())
    dashboards_read = {metric_name(s) for _, _, expr in panel_queries() for s in selectors(expr)}
    assert not set(EXTERNAL_METRICS) & dashboards_read  # dashboards show the stack's own data


def test_the_static_check_catches_a_misspelt_metric() -> None:
    known = exported_names()
    [selector] = selectors("sum(rate(switchboard_gateway_tool_call_total[5m]))")
    assert metric_name(selector) not in known
    assert "switchboard_gateway_tool_calls_total" in known


def test_selectors_set_aside_functions_grouping_and_ranges() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, service) (rate(a_bucket{x="1"}[$__rate_interval])))'
        ' / on(service) group_left b and c{state=~"in_.*"} offset 5m'
    )
    assert selectors(expr) == ['a_bucket{x="1"}', "b", 'c{state=~"in_.*"}']


def test_the_kustomization_provisions_every_dashboard_in_a_config_map() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    [generator] = kustomization["configMapGenerator"]
    assert sorted(generator["files"]) == sorted(
        f"dashboards/{p.name}" for p in DASHBOARDS.glob("*.json")
    )
    assert "servicemonitor.yaml" in kustomization["resources"]


def test_kubectl_kustomize_renders_the_dashboards_config_map() -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(MONITORING)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(result.stdout)}
    assert set(docs) == {"ConfigMap", "ServiceMonitor"}
    data = docs["ConfigMap"]["data"]
    assert set(data) == {p.name for p in DASHBOARDS.glob("*.json")}
    assert docs["ConfigMap"]["metadata"]["labels"]["grafana_dashboard"] == "1"
