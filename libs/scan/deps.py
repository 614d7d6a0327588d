"""Dependency manifests and lockfiles of a source tree, and the pinned versions they name."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libs.common.osv import NPM, PYPI

PY_MANIFESTS = ("requirements.txt", "pyproject.toml", "setup.py", "setup.cfg", "Pipfile")
JS_MANIFESTS = ("package.json",)
LOCKFILES = (
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    "pdm.lock",
)
MAX_READ = 4 * 1024 * 1024
_REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([^\s;#\\,]+)")
_NPM_EXACT = re.compile(r"^[~^=v]?(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)$")


@dataclass(frozen=True, order=True)
class Dependency:
    """One package at one version, and the file it was read from."""

    ecosystem: str
    name: str
    version: str
    file: str


def _read(root: Path, rel: str) -> str:
    """A file's text, at most MAX_READ bytes ('' when unreadable)."""
    try:
        with open(root / rel, "rb") as fh:
            return fh.read(MAX_READ).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _is_requirements(rel: str) -> bool:
    """requirements.txt, requirements-dev.txt, requirements/base.txt ..."""
    base = rel.rsplit("/", 1)[-1]
    return base.endswith(".txt") and ("requirements" in base or "/requirements/" in f"/{rel}")


def manifests(files: list[str]) -> list[str]:
    """The dependency manifests among the files (shallowest first, then by name)."""
    found = [f for f in files if f.rsplit("/", 1)[-1] in PY_MANIFESTS + JS_MANIFESTS]
    found += [f for f in files if _is_requirements(f) and f not in found]
    return sorted(found, key=lambda f: (f.count("/"), f))


def lockfiles(root: Path, files: list[str]) -> list[str]:
    """Lockfiles, and requirements files that pin every requirement (== or --hash)."""
    found = [f for f in files if f.rsplit("/", 1)[-1] in LOCKFILES]
    for rel in files:
        if not _is_requirements(rel):
            continue
        lines = [
            line.strip()
            for line in _read(root, rel).splitlines()
            if line.strip() and not line.strip().startswith(("#", "-r", "-c", "--"))
        ]
        if lines and all("==" in line or "--hash" in line for line in lines):
            found.append(rel)
    return sorted(set(found), key=lambda f: (f.count("/"), f))


def _requirements(text: str, rel: str) -> list[Dependency]:
    """name==version lines of a requirements file."""
    out = []
    for line in text.splitlines():
        match = _REQ.match(line)
        if match:
            out.append(Dependency(PYPI, match.group(1), match.group(2), rel))
    return out


def _pyproject(text: str, rel: str) -> list[Dependency]:
    """Pinned requirements of [project] dependencies and optional dependencies."""
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):
        return []
    project = doc.get("project") or {}
    reqs = list(project.get("dependencies") or [])
    for extra in (project.get("optional-dependencies") or {}).values():
        reqs.extend(extra or [])
    return _requirements("\n".join(str(r) for r in reqs), rel)


def _toml_packages(text: str, rel: str) -> list[Dependency]:
    """[[package]] name/version of poetry.lock and uv.lock."""
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError):
        return []
    return [
        Dependency(PYPI, str(p["name"]), str(p["version"]), rel)
        for p in doc.get("package") or []
        if isinstance(p, dict) and p.get("name") and p.get("version")
    ]


def _json(text: str) -> Any:
    """Parsed JSON, or None."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def _package_json(text: str, rel: str) -> list[Dependency]:
    """The dependencies / devDependencies of package.json at an exact (or ^/~ based) version."""
    doc = _json(text)
    if not isinstance(doc, dict):
        return []
    out = []
    for key in ("dependencies", "devDependencies", "optionalDependencies"):
        section = doc.get(key)
        for name, spec in section.items() if isinstance(section, dict) else ():
            match = _NPM_EXACT.match(str(spec).strip())
            if match:
                out.append(Dependency(NPM, name, match.group(1), rel))
    return out


def _package_lock(text: str, rel: str) -> list[Dependency]:
    """Every installed package of package-lock.json (v2/v3 `packages`, v1 `dependencies`)."""
    doc = _json(text)
    if not isinstance(doc, dict):
        return []
    out = []
    packages = doc.get("packages")
    if isinstance(packages, dict):
        for path, info in packages.items():
            if path and isinstance(info, dict) and info.get("version") and "node_modules/" in path:
                name = info.get("name") or path.rsplit("node_modules/", 1)[-1]
                out.append(Dependency(NPM, str(name), str(info["version"]), rel))
    deps = doc.get("dependencies")
    if not out and isinstance(deps, dict):
        for name, info in deps.items():
            if isinstance(info, dict) and info.get("version"):
                out.append(Dependency(NPM, name, str(info["version"]), rel))
    return out


READERS = {
    "pyproject.toml": _pyproject,
    "poetry.lock": _toml_packages,
    "uv.lock": _toml_packages,
    "package.json": _package_json,
    "package-lock.json": _package_lock,
    "npm-shrinkwrap.json": _package_lock,
}


def dependencies(root: Path, files: list[str]) -> list[Dependency]:
    """Every pinned dependency the manifests and lockfiles name, once each, sorted."""
    found: set[Dependency] = set()
    for rel in files:
        if "node_modules/" in f"/{rel}":
            continue
        base = rel.rsplit("/", 1)[-1]
        reader = READERS.get(base)
        if reader is None and _is_requirements(rel):
            reader = _requirements
        if reader is not None:
            found.update(reader(_read(root, rel), rel))
    return sorted(found)
