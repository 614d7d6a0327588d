"""`make k8s-check`: the Kubernetes manifests, the Dockerfiles and the alert rules, validated.

Each kustomize overlay is rendered with `kubectl kustomize` and validated by
`kubernetes-validate --strict` against the Kubernetes API schemas (unknown fields are errors).
Custom resources have no schema there; those of `CUSTOM_KINDS` are set aside by name and any
other kind it cannot validate is a failure. hadolint lints every `deploy/**/Dockerfile*`, and
when `deploy/monitoring/*.rules.yml` exist promtool checks them and runs the rule tests
(`deploy/monitoring/*.test.yml`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from libs.devstack import proc

K8S = Path("deploy") / "k8s"
OVERLAYS = ("overlays/dev", "overlays/prod")
# overlays rendered with an optional component added: (name, overlay, component)
WITH_COMPONENTS = (("overlays/dev+gvisor", "overlays/dev", "components/gvisor"),)
# custom resources kubernetes-validate has no schema for: CloudNativePG's Cluster (prod) and the
# Prometheus Operator's objects of components/monitoring and the dev overlay
CUSTOM_KINDS = {
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
KUBERNETES_VERSION = "1.37.0"
MONITORING = Path("deploy") / "monitoring"


class CheckFailed(RuntimeError):
    """A check found a fault; the message says which and where."""


@dataclass(frozen=True)
class Rendered:
    """One overlay's manifests: what is validated and the custom resources set aside."""

    name: str
    documents: list[dict]
    custom: list[dict]


def tool(name: str) -> str:
    """The executable `name`: beside this Python (the venv's pinned wheels), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise CheckFailed(f"{name} is not installed (make setup installs it)")
    return found


def run(argv: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a checker and capture what it prints."""
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False)


def kustomize(directory: Path) -> str:
    """`kubectl kustomize` of one kustomization directory."""
    result = run([tool("kubectl"), "kustomize", str(directory)])
    if result.returncode != 0:
        raise CheckFailed(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return result.stdout


def render_with_component(overlay: Path, component: Path) -> str:
    """An overlay with one more component, rendered from a kustomization made for it."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kustomization.yaml").write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    # kustomize takes relative paths only
                    "resources": [os.path.relpath(overlay.resolve(), tmp)],
                    "components": [os.path.relpath(component.resolve(), tmp)],
                }
            )
        )
        return kustomize(Path(tmp))


def split(name: str, text: str) -> Rendered:
    """The rendered documents, with the custom resources of CUSTOM_KINDS set apart."""
    documents, custom = [], []
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        if (doc.get("apiVersion"), doc.get("kind")) in CUSTOM_KINDS:
            custom.append(doc)
        else:
            documents.append(doc)
    return Rendered(name, documents, custom)


def render_all(root: Path = proc.ROOT) -> list[Rendered]:
    """Every overlay (and overlay with a component) of deploy/k8s, rendered."""
    k8s = root / K8S
    rendered = [split(o, kustomize(k8s / o)) for o in OVERLAYS]
    for name, overlay, component in WITH_COMPONENTS:
        rendered.append(split(name, render_with_component(k8s / overlay, k8s / component)))
    return rendered


def validate(rendered: Rendered) -> None:
    """kubernetes-validate --strict on the documents; any error or warning fails."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as out:
        yaml.safe_dump_all(rendered.documents, out)
        out.flush()
        argv = [tool("kubernetes-validate"), "--strict", "--quiet"]
        result = run([*argv, "-k", KUBERNETES_VERSION, out.name])
    complaints = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.startswith(("WARN", "ERROR", "CRITICAL"))
    ]
    if result.returncode != 0 or complaints:
        text = "\n".join(complaints) or result.stdout + result.stderr
        raise CheckFailed(f"{rendered.name}: kubernetes-validate --strict failed:\n{text}")


def dockerfiles(root: Path = proc.ROOT) -> list[Path]:
    """Every deploy/**/Dockerfile*."""
    return sorted(p for p in (root / "deploy").rglob("Dockerfile*") if p.is_file())


def hadolint(files: Iterable[Path]) -> None:
    """Fail unless hadolint finds nothing in the files."""
    files = list(files)
    if not files:
        return
    result = run([tool("hadolint"), *map(str, files)])
    if result.returncode != 0:
        raise CheckFailed(f"hadolint:\n{result.stdout}{result.stderr}")


def promtool(root: Path = proc.ROOT) -> list[str]:
    """Run promtool check/test rules on deploy/monitoring when rules exist; return what ran."""
    rules = sorted((root / MONITORING).glob("*.rules.yml"))
    if not rules:
        return []
    binary = tool("promtool")
    ran = []
    result = run([binary, "check", "rules", *map(str, rules)])
    if result.returncode != 0:
        raise CheckFailed(f"promtool check rules:\n{result.stdout}{result.stderr}")
    ran.append(f"promtool check rules: {len(rules)} file(s)")
    tests = sorted((root / MONITORING).glob("*.test.yml"))
    if tests:
        result = run([binary, "test", "rules", *map(str, tests)], cwd=root / MONITORING)
        if result.returncode != 0:
            raise CheckFailed(f"promtool test rules:\n{result.stdout}{result.stderr}")
        ran.append(f"promtool test rules: {len(tests)} file(s)")
    return ran


def check(root: Path = proc.ROOT) -> list[str]:
    """Every check; returns one line per check passed, raises CheckFailed on the first fault."""
    passed = []
    for rendered in render_all(root):
        validate(rendered)
        skipped = ", ".join(f"{d['kind']}/{d['metadata']['name']}" for d in rendered.custom)
        note = f" (not validated, custom resources: {skipped})" if skipped else ""
        passed.append(f"{rendered.name}: {len(rendered.documents)} objects valid{note}")
    files = dockerfiles(root)
    hadolint(files)
    passed.append(f"hadolint: {len(files)} Dockerfile(s) clean")
    passed += promtool(root) or ["promtool: no deploy/monitoring/*.rules.yml yet"]
    return passed


def main() -> int:
    """Run every check and print what passed, or the first fault."""
    try:
        for line in check():
            print(f"ok  {line}")
    except CheckFailed as exc:
        print(f"k8s-check: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
