"""One scan from archive to report: extract with guards, run the controls, score, count."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from libs.common import osv
from libs.scan import controls, extract, scoring

SCANNER = "switchboard-scan:1.0.0"
LIBRARIES = ("bandit", "detect-secrets", "license-expression", "packaging")
SEVERITIES = ("critical", "high", "medium", "low")


def toolchain_version() -> str:
    """The scanner and each analyser library at its installed version."""
    parts = [SCANNER]
    for name in LIBRARIES:
        try:
            parts.append(f"{name}:{metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name}:missing")
    return ",".join(parts)


def single_top_dir(root: Path, files: list[str]) -> tuple[Path, list[str]]:
    """A tree whose files all sit in one top directory (`repo-main/...`) is read from there."""
    tops = {f.split("/", 1)[0] for f in files}
    if len(tops) == 1 and all("/" in f for f in files):
        top = tops.pop()
        return root / top, [f.split("/", 1)[1] for f in files]
    return root, files


def scan(archive: Path, workdir: Path, advisories: osv.Advisories,
         limits: extract.Limits) -> dict[str, Any]:  # fmt: skip
    """The report: {"outcome": "scanned", ...} or {"outcome": "refused", "reason"}."""
    root = workdir / "tree"
    try:
        unpacked = extract.extract(archive, root, limits)
    except extract.UnsafeArchive as exc:
        return {"outcome": "refused", "reason": str(exc),
                "controls": [controls.archive_safety(str(exc)).to_dict()]}  # fmt: skip
    source_root, files = single_top_dir(root, unpacked.files)
    tree = controls.Tree(source_root, files, advisories)
    results = controls.run_all(tree)
    by_id = {r.control.id: {**r.to_dict(), **r.extra} for r in results}
    scored = scoring.score(by_id)
    counts = {s: 0 for s in SEVERITIES}
    for result in results:
        if not result.passed and result.control.severity in counts:
            counts[result.control.severity] += max(result.findings, 1)
    return {
        "outcome": "scanned",
        "reason": None,
        **scored,
        "controls_catalog_version": controls.CONTROLS_CATALOG_VERSION,
        "toolchain_version": toolchain_version(),
        "total_findings": sum(counts.values()),
        **{f"{s}_findings": n for s, n in counts.items()},
        "controls": [r.to_dict() for r in results],
        "tools": tree.tools,
        "license": tree.license,
        "file_count": len(unpacked.files),
        "unpacked_bytes": unpacked.total_bytes,
    }
