"""docs/DEPLOY.md against the manifests: the Secrets to create, the variables, the dashboards.

The prod overlay references its Secrets only (they are created beforehand), so every Secret and
key it reads must be in the docs' "create these Secrets" step; every variable the services'
Deployments set must be one a settings class reads (a misspelt one would be silently ignored);
every shipped dashboard must be described."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from libs.common.bus_access import SERVICES
from libs.devstack.k8s_config import SETTINGS
from tests.support.k8s_manifests import objects, rendered
from tests.support.promql import DASHBOARDS

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs" / "DEPLOY.md"
STEP_START = "3. Prod, beforehand"
STEP_END = "Set the host"
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def secrets_step(text: str) -> str:
    """The docs' step that lists the Secrets to create before applying the prod overlay."""
    start = text.index(STEP_START)
    return text[start : text.index(STEP_END, start)]


def documented_secrets(step: str) -> dict[str, set[str]]:
    """Secret name → keys, from the step's bullets (`<SERVICE>_X` stands for each service)."""
    secrets: dict[str, set[str]] = {}
    for bullet in re.split(r"\n\s*- ", step)[1:]:
        names = re.findall(r"`([^`]+)`", bullet)
        if not names:
            continue
        keys: set[str] = set()
        for token in names[1:]:
            if "<SERVICE>" in token:
                keys |= {token.replace("<SERVICE>", s.upper()) for s in SERVICES}
            else:
                keys.add(token)
        secrets[names[0]] = keys
        for extra in names[1:]:  # a bullet may name a second Secret ("and `x` (type ...)")
            secrets.setdefault(extra, set())
    return secrets


def pod_specs(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The pod spec of every workload."""
    for doc in documents:
        if doc["kind"] in WORKLOADS:
            yield doc["spec"]["template"]["spec"]


def referenced_secrets(documents: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Secret name → the keys the manifests read from it (no keys: used whole)."""
    refs: dict[str, set[str]] = {}
    for spec in pod_specs(documents):
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.setdefault(ref["name"], set()).add(ref["key"])
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    refs.setdefault(source["secretRef"]["name"], set())
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                refs.setdefault(volume["secret"]["secretName"], set())
    for doc in documents:
        if doc["kind"] == "Ingress":
            for tls in doc["spec"].get("tls", []):
                refs.setdefault(tls["secretName"], set())
        if doc["kind"] == "Cluster":
            refs.setdefault(doc["spec"]["superuserSecret"]["name"], set())
    return refs


def missing_from_docs(refs: dict[str, set[str]], docs: dict[str, set[str]]) -> list[str]:
    """Each referenced Secret or key the docs do not list."""
    missing = [name for name in refs if name not in docs]
    missing += [f"{name}/{key}" for name, keys in refs.items() if name in docs
                for key in sorted(keys - docs[name])]  # fmt: skip
    return missing


def test_every_secret_and_key_the_prod_overlay_reads_is_in_the_docs_step() -> None:
    refs = referenced_secrets(rendered()["overlays/prod"])
    assert {"switchboard-app", "switchboard-nats", "switchboard-db", "switchboard-tls"} <= set(refs)
    docs = documented_secrets(secrets_step(DOCS.read_text()))
    assert missing_from_docs(refs, docs) == []


def test_a_secret_key_missing_from_the_docs_is_reported() -> None:
    docs = documented_secrets(secrets_step(DOCS.read_text()))
    refs = {"switchboard-app": {"REGISTRY_MASTER_KEY", "NOT_DOCUMENTED"}, "nowhere": set()}
    assert missing_from_docs(refs, docs) == ["nowhere", "switchboard-app/NOT_DOCUMENTED"]
    assert "AUDIT_NATS_PASSWORD" in docs["switchboard-nats"]  # <SERVICE>_ expanded


def setting_variables() -> set[str]:
    """Every variable a service's settings class reads (its own, the platform's, aliases)."""
    names: set[str] = set()
    for cls in SETTINGS.values():
        prefix = cls.service.upper()
        for field in dataclasses.fields(cls):
            if not field.init:
                continue
            name = field.metadata.get("env") or f"{prefix}_{field.name.upper()}"
            names.add(name)
            if field.metadata.get("per_service"):
                names.add(f"{prefix}_{name}")
            names.update(field.metadata.get("aliases", ()))
    return names


def service_environment(overlay: str) -> dict[str, set[str]]:
    """Per service Deployment: every variable it sets (env, and envFrom ConfigMaps' keys)."""
    maps = objects(overlay, "ConfigMap")
    out: dict[str, set[str]] = {}
    for service in SERVICES:
        pod = objects(overlay, "Deployment")[service]["spec"]["template"]["spec"]
        names: set[str] = set()
        for container in pod["containers"]:
            names |= {var["name"] for var in container.get("env", [])}
            for source in container.get("envFrom", []):
                names |= set(maps[source["configMapRef"]["name"]]["data"])
        out[service] = names
    return out


def unread(environment: dict[str, set[str]]) -> list[str]:
    """Variables a Deployment sets that no settings class reads."""
    known = setting_variables()
    return sorted(f"{service}: {name}" for service, names in environment.items()
                  for name in names - known)  # fmt: skip


@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/prod", "overlays/dev+gvisor"])
def test_every_variable_the_service_deployments_set_is_a_setting(overlay: str) -> None:
    environment = service_environment(overlay)
    assert "NATS_STREAM_REPLICAS" in environment["gateway"]
    assert unread(environment) == []


def test_a_variable_no_settings_class_reads_is_reported() -> None:
    assert unread({"gateway": {"GATEWAY_PORT", "GATEWAY_PROT"}}) == ["gateway: GATEWAY_PROT"]


def dashboards_section(text: str) -> str:
    """The docs' "### Dashboards" section."""
    start = text.index("### Dashboards")
    return text[start : text.index("\n### ", start + 1)]


def undescribed(section: str, files: list[str]) -> list[str]:
    """Dashboard files no bullet of the section describes (`**Title** (`file`): what it shows`)."""
    bullets = re.findall(r"^- \*\*[^*]+\*\* \(`([^`]+)`\): \S", section, flags=re.MULTILINE)
    return [name for name in files if name not in bullets]


def test_each_shipped_dashboard_is_described_in_the_docs() -> None:
    files = sorted(p.name for p in DASHBOARDS.glob("*.json"))
    assert undescribed(dashboards_section(DOCS.read_text()), files) == []
    assert undescribed("- **X** (`a.json`): shows a", ["a.json", "b.json"]) == ["b.json"]
