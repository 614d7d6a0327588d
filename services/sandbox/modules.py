"""Module packages for code tools: metadata and wheel-only installs from the configured index."""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import orjson

from libs.common import osv
from libs.common.errors import NotFound, Unprocessable, UpstreamError, UpstreamTimeout

PIP_TIMEOUT_S = 120.0
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


async def _pip(*args: str, timeout: float = PIP_TIMEOUT_S) -> tuple[int, bytes, bytes]:
    """Run this interpreter's pip (its configured index, wheels only: nothing is built here)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pip",
        "--disable-pip-version-check",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise UpstreamTimeout("The package index did not answer in time.") from None
    return proc.returncode or 0, out, err


async def metadata(name: str) -> dict[str, Any]:
    """Name, version, summary, requirements of the newest wheel of `name` on the index."""
    code, out, err = await _pip(
        "install",
        "--dry-run",
        "--quiet",
        "--report",
        "-",
        "--no-deps",
        "--only-binary=:all:",
        "--ignore-installed",
        name,
    )
    if code != 0:
        if b"No matching distribution" in err or b"Could not find a version" in err:
            raise NotFound(f"No wheel of {name!r} on the package index.", details={"name": name})
        raise UpstreamError("The package index could not be asked.", details={"name": name})
    report = orjson.loads(out)
    meta = report["install"][0]["metadata"]
    return {
        "name": meta.get("name"),
        "version": meta.get("version"),
        "summary": meta.get("summary"),
        "requires_python": meta.get("requires_python"),
        "requires_dist": meta.get("requires_dist") or [],
        "license": meta.get("license") or meta.get("license_expression"),
        "home_page": meta.get("home_page"),
    }


def package_dir(root: Path, name: str) -> Path:
    """Where a module's files live (mounted read-only into tool runs that import it)."""
    return root / "packages" / name.lower()


async def install(
    root: Path, name: str, advisories: osv.Advisories | None = None
) -> dict[str, Any]:
    """Install `name` (and its dependencies, wheels only) into its own directory.

    Every distribution pip put there is checked against the OSV `advisories` before it replaces
    the installed one: a known-vulnerable version is refused (422 naming the advisories)."""
    target = package_dir(root, name)
    staging = target.with_name(target.name + ".new")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.parent.chmod(0o755)
    shutil.rmtree(staging, ignore_errors=True)
    code, _, err = await _pip(
        "install",
        "--quiet",
        "--no-compile",
        "--only-binary=:all:",
        "--target",
        str(staging),
        name,
    )
    if code != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["pip failed"]
        return {"status": "failed", "error": tail[0][:500], "version": None}
    found = vulnerable(staging, advisories) if advisories is not None else []
    if found:
        shutil.rmtree(staging, ignore_errors=True)
        ids = sorted({a["id"] for a in found})
        raise Unprocessable(
            f"{name!r} would install known-vulnerable versions: "
            + ", ".join(f"{a['package']} {a['version']} ({a['id']})" for a in found),
            details={"name": name, "advisories": ids, "vulnerable": found},
        )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    target.chmod(0o755)
    return {"status": "installed", "error": None, "version": installed_version(target, name)}


def installed_version(target: Path, name: str) -> str | None:
    """The version recorded in the installed dist-info."""
    want = name.lower().replace("-", "_")
    for info in target.glob("*.dist-info"):
        dist, _, version = info.name[: -len(".dist-info")].rpartition("-")
        if dist.lower().replace("-", "_") == want:
            return version
    return None


def distributions(target: Path) -> list[tuple[str, str]]:
    """(name, version) of every distribution installed in a package directory, sorted."""
    out = []
    for info in target.glob("*.dist-info"):
        dist, _, version = info.name[: -len(".dist-info")].rpartition("-")
        if dist and version:
            out.append((dist, version))
    return sorted(out)


def vulnerable(target: Path, advisories: osv.Advisories) -> list[dict[str, str]]:
    """The installed distributions an OSV advisory affects: package, version, advisory id."""
    return [
        {"package": dist, "version": version, "id": match.id, "summary": match.summary}
        for dist, version in distributions(target)
        for match in advisories.matches(osv.PYPI, dist, version)
    ]


def import_names(target: Path) -> set[str]:
    """Top-level import names a package directory provides."""
    names = set()
    for entry in target.iterdir() if target.is_dir() else ():
        if entry.name.endswith((".dist-info", ".data")) or entry.name.startswith(("_", ".")):
            continue
        names.add(entry.name[:-3] if entry.name.endswith(".py") else entry.name)
    return names


def mounts_for(root: Path, allowed: list[str], imports: list[str]) -> list[Path]:
    """The installed package dirs a tool needs: those of allowed modules it imports."""
    wanted = set(imports)
    out = []
    for name in allowed:
        target = package_dir(root, name)
        if target.is_dir() and (import_names(target) & wanted or name in wanted):
            out.append(target)
    return out


def check_name(name: str) -> str:
    """A package name from a path, or 404."""
    if not NAME_RE.match(name):
        raise NotFound("No such module.", details={"name": name})
    return name
