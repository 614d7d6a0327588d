"""The rendered deploy/k8s overlays as data: objects by kind and name, containers' environments."""

from __future__ import annotations

import base64
import functools
from pathlib import Path
from typing import Any

from libs.devstack import k8s_check

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay's objects (custom resources included), rendered once per test process."""
    return {r.name: r.documents + r.custom for r in k8s_check.render_all(ROOT)}


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    """The overlay's objects of one kind, by name."""
    return {d["metadata"]["name"]: d for d in rendered()[overlay] if d["kind"] == kind}


def named(overlay: str, kind: str, prefix: str) -> dict[str, Any]:
    """The one object of a kind whose (hashed, for generated ones) name starts with prefix."""
    (found,) = [d for n, d in objects(overlay, kind).items() if n.startswith(prefix)]
    return found


def service_container(overlay: str, service: str) -> dict[str, Any]:
    """The one container of a service's Deployment."""
    deployment = objects(overlay, "Deployment")[service]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def resolve_env(overlay: str, container: dict[str, Any], pod: str) -> dict[str, str]:
    """The container's environment as the kubelet builds it (dev: the generated Secrets)."""
    secrets = objects(overlay, "Secret")
    maps = objects(overlay, "ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]]["data"])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        ref = var["valueFrom"]
        if "secretKeyRef" in ref:
            data = secrets[ref["secretKeyRef"]["name"]]["data"]
            env[var["name"]] = base64.b64decode(data[ref["secretKeyRef"]["key"]]).decode()
        elif "configMapKeyRef" in ref:
            data = maps[ref["configMapKeyRef"]["name"]]["data"]
            env[var["name"]] = data[ref["configMapKeyRef"]["key"]]
        else:
            assert ref["fieldRef"]["fieldPath"] == "metadata.name", ref
            env[var["name"]] = pod
    return env
