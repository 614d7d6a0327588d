"""`make k8s-check` (libs/devstack/k8s_check.py) on deploy/k8s, and on faults it must find."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from libs.devstack import k8s_check
from libs.devstack.k8s_check import CheckFailed, Rendered

ROOT = Path(__file__).resolve().parents[3]
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "x"},
    "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {
            "metadata": {"labels": {"a": "b"}},
            "spec": {"containers": [{"name": "x", "image": "x"}]},
        },
    },
}


def test_the_shipped_manifests_dockerfiles_and_rules_pass() -> None:
    passed = k8s_check.check(ROOT)
    assert any(line.startswith("overlays/dev:") for line in passed)
    assert any(line.startswith("overlays/prod:") and "Cluster/postgres" in line for line in passed)
    assert any(line.startswith("overlays/dev+gvisor:") for line in passed)
    assert any(line.startswith("hadolint:") for line in passed)


def test_every_overlay_renders_and_only_the_named_custom_resources_are_set_aside() -> None:
    rendered = {r.name: r for r in k8s_check.render_all(ROOT)}
    assert set(rendered) == {"overlays/dev", "overlays/prod", "overlays/dev+gvisor"}
    monitoring = ["PodMonitor/switchboard-nats", "PrometheusRule/switchboard"]
    monitoring += ["ServiceMonitor/switchboard"]

    def aside(name: str) -> list[str]:
        return sorted(f"{d['kind']}/{d['metadata']['name']}" for d in rendered[name].custom)

    assert aside("overlays/prod") == sorted(["Cluster/postgres", *monitoring])
    assert aside("overlays/dev") == sorted(["PodMonitor/switchboard-postgres", *monitoring])
    kinds = {d["kind"] for d in rendered["overlays/dev+gvisor"].documents}
    assert "RuntimeClass" in kinds


def test_a_field_the_api_does_not_have_fails_strict_validation() -> None:
    bad = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replicaz": 2}}
    k8s_check.validate(Rendered("good", [DEPLOYMENT], []))
    with pytest.raises(CheckFailed, match="replicaz"):
        k8s_check.validate(Rendered("bad", [bad], []))


def test_a_kind_without_a_schema_that_is_not_set_aside_fails() -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(CheckFailed, match="Widget"):
        k8s_check.validate(Rendered("crd", [DEPLOYMENT, unknown], []))


def test_a_dockerfile_hadolint_flags_fails(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get install curl\n")
    with pytest.raises(CheckFailed, match="DL3"):
        k8s_check.hadolint([bad])


def test_an_overlay_that_does_not_render_fails(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "deploy" / "k8s", tmp_path / "deploy" / "k8s")
    (tmp_path / "deploy" / "k8s" / "base" / "nginx.yaml").unlink()
    with pytest.raises(CheckFailed, match="kustomize"):
        k8s_check.render_all(tmp_path)


RULES = """groups:
  - name: example
    rules:
      - alert: Down
        expr: up == 0
        for: 1m
"""
RULE_TEST = """rule_files: [example.rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - {series: 'up{job="gateway"}', values: "0x5"}
    alert_rule_test:
      - {eval_time: 3m, alertname: Down, exp_alerts: [{exp_labels: {job: gateway}}]}
"""


def test_promtool_checks_the_rules_and_runs_their_tests(tmp_path: Path) -> None:
    monitoring = tmp_path / "deploy" / "monitoring"
    monitoring.mkdir(parents=True)
    assert k8s_check.promtool(tmp_path) == []
    (monitoring / "example.rules.yml").write_text(RULES)
    (monitoring / "example.test.yml").write_text(RULE_TEST)
    assert len(k8s_check.promtool(tmp_path)) == 2
    (monitoring / "example.test.yml").write_text(RULE_TEST.replace("job: gateway", "job: audit"))
    with pytest.raises(CheckFailed, match="test rules"):
        k8s_check.promtool(tmp_path)
    (monitoring / "example.rules.yml").write_text(RULES.replace("up == 0", "up =="))
    with pytest.raises(CheckFailed, match="check rules"):
        k8s_check.promtool(tmp_path)
