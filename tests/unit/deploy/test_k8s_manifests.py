"""The rendered deploy/k8s overlays against the code: variables, ports, probes, secrets, security.

Each service container's variables are names its settings class reads; in the dev overlay they
are resolved (Secrets, ConfigMaps, the pod name) and loaded by the settings class itself, and
the app built from those settings must serve the probes' paths. Ports are the settings'
defaults; secrets are Secret references only, and prod ships no Secret at all.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

import pytest

from libs.common.settings import Settings
from libs.devstack import k8s_config
from tests.support.k8s_manifests import (
    named,
    objects,
    rendered,
    resolve_env,
    service_container,
)

ROOT = Path(__file__).resolve().parents[3]
SERVICES = tuple(k8s_config.SETTINGS)
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def variables(cls: type[Settings]) -> dict[str, dataclasses.Field]:
    """Every variable name the settings class reads, with its field."""
    prefix = cls.service.upper()
    names = {}
    for f in dataclasses.fields(cls):
        name = f.metadata.get("env") or f"{prefix}_{f.name.upper()}"
        names[name] = f
        if f.metadata.get("per_service"):
            names[f"{prefix}_{name}"] = f
        for alias in f.metadata.get("aliases", ()):
            names[alias] = f
    return names


@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/prod"])
@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_is_one_the_service_reads_and_secrets_are_references(
    overlay: str, service: str
) -> None:
    known = variables(k8s_config.SETTINGS[service])
    container = service_container(overlay, service)
    assert container["command"] == ["python", "-m", f"services.{service}"]
    (source,) = container["envFrom"]
    platform = objects(overlay, "ConfigMap")[source["configMapRef"]["name"]]["data"]
    for name in [v["name"] for v in container["env"]] + list(platform):
        assert name in known, f"{service} does not read {name}"
    for var in container["env"]:
        if not known[var["name"]].repr:  # a secret field
            assert "secretKeyRef" in var.get("valueFrom", {}), f"{var['name']} is a literal"


@pytest.mark.parametrize("service", SERVICES)
def test_the_dev_environment_loads_into_the_settings_and_the_probes_are_served(
    service: str,
) -> None:
    cls = k8s_config.SETTINGS[service]
    container = service_container("overlays/dev", service)
    env = resolve_env("overlays/dev", container, f"{service}-0")
    settings = cls.from_env(env)
    assert settings.database_url.startswith(f"postgresql://switchboard_{service}:")
    assert settings.nats_user == service
    assert settings.nats_password
    app = importlib.import_module(f"services.{service}.app").create_app(settings)
    paths = {getattr(route, "path", None) for route in app.routes}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] in paths
        assert container[probe]["httpGet"]["port"] == "http"


@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/prod"])
def test_ports_are_the_settings_defaults_and_nginx_reaches_them(overlay: str) -> None:
    services = objects(overlay, "Service")
    for service, cls in k8s_config.SETTINGS.items():
        container = service_container(overlay, service)
        assert container["ports"] == [{"name": "http", "containerPort": cls.default_port}]
        assert services[service]["spec"]["ports"][0]["port"] == cls.default_port
        assert f"{service.upper()}_PORT" not in {v["name"] for v in container["env"]}
    config = named(overlay, "ConfigMap", "nginx-config")
    assert config["data"]["nginx.conf"] == k8s_config.render_nginx(ROOT)


def test_prod_ships_no_secret_and_dev_has_every_key_referenced() -> None:
    assert objects("overlays/prod", "Secret") == {}
    for overlay in ("overlays/dev", "overlays/prod"):
        for doc in rendered()[overlay]:
            for var in containers_env(doc):
                assert "value" not in var or "password" not in var["name"].lower()
    secrets = objects("overlays/dev", "Secret")
    for doc in rendered()["overlays/dev"]:
        for var in containers_env(doc):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets[ref["name"]]["data"], ref


def containers_env(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc["kind"] not in WORKLOADS:
        return []
    return [v for c in doc["spec"]["template"]["spec"]["containers"] for v in c.get("env", [])]


@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/prod"])
def test_every_workload_is_non_root_read_only_and_confined(overlay: str) -> None:
    for doc in rendered()[overlay]:
        if doc["kind"] not in WORKLOADS:
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert "limits" in container["resources"] and "requests" in container["resources"]


@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/prod"])
def test_each_service_has_its_account_budget_and_a_pre_stop_delay(overlay: str) -> None:
    budgets = objects(overlay, "PodDisruptionBudget")
    accounts = objects(overlay, "ServiceAccount")
    for service in SERVICES:
        pod = objects(overlay, "Deployment")[service]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == service and service in accounts
        assert budgets[service]["spec"]["selector"]["matchLabels"] == {
            "app.kubernetes.io/name": service
        }
        pre_stop = service_container(overlay, service)["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep" and int(pre_stop[1]) < pod["terminationGracePeriodSeconds"]
    assert (
        objects(overlay, "HorizontalPodAutoscaler")["gateway"]["spec"]["scaleTargetRef"]["name"]
        == "gateway"
    )


def test_the_sandbox_work_root_is_a_writable_volume() -> None:
    container = service_container("overlays/dev", "sandbox")
    root = next(v["value"] for v in container["env"] if v["name"] == "SANDBOX_WORK_ROOT")
    assert root in {m["mountPath"] for m in container["volumeMounts"]}


def test_nats_gets_every_service_password_from_the_key_that_service_uses() -> None:
    nats = objects("overlays/dev", "StatefulSet")["nats"]["spec"]["template"]["spec"]
    nats_env = {v["name"]: v["valueFrom"]["secretKeyRef"] for v in nats["containers"][0]["env"]
                if "secretKeyRef" in v.get("valueFrom", {})}  # fmt: skip
    for service in SERVICES:
        variable = k8s_config.password_variable(service)
        own = {v["name"]: v for v in service_container("overlays/dev", service)["env"]}
        assert nats_env[variable] == own[variable]["valueFrom"]["secretKeyRef"]


def test_prod_runs_three_nats_nodes_and_cloudnativepg_dev_a_postgres_statefulset() -> None:
    prod_nats = objects("overlays/prod", "StatefulSet")["nats"]
    assert prod_nats["spec"]["replicas"] == 3
    config = named("overlays/prod", "ConfigMap", "nats-config")
    assert "nats-2.nats-cluster:6222" in config["data"]["cluster.conf"]
    assert "Cluster" in {d["kind"] for d in rendered()["overlays/prod"]}
    assert "postgres" not in objects("overlays/prod", "StatefulSet")
    assert "postgres" in objects("overlays/dev", "StatefulSet")


def test_the_network_is_denied_by_default() -> None:
    policies = objects("overlays/prod", "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    public = policies["public-egress"]["spec"]["podSelector"]["matchExpressions"][0]["values"]
    assert "auth" not in public and "sandbox" in public
