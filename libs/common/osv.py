"""Known-vulnerable package versions from an OSV-format advisory set (PyPI and npm).

The set is loaded from a path: a directory of OSV JSON files (each one record or a list of them)
or one JSON file holding a list. A record's `affected[]` entries name a package; a version is
affected when it is listed in `versions`, or falls in a `ranges[]` entry of type ECOSYSTEM or
SEMVER (events `introduced`, `fixed`, `last_affected`, evaluated in version order as the OSV
schema describes). GIT ranges are ignored: we match released versions only.

Pure standard library plus `packaging` (for PyPI versions): the scanner imports it inside the
sandbox as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

PYPI = "PyPI"
NPM = "npm"
ECOSYSTEMS = (PYPI, NPM)
MAX_FILE_BYTES = 64 * 1024 * 1024
_SEMVER = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


class OsvError(ValueError):
    """The advisory set cannot be read (a missing path, a file that is not OSV JSON)."""


def normalise_name(ecosystem: str, name: str) -> str:
    """A package name as the ecosystem compares it (PEP 503 for PyPI, lower case for npm)."""
    if ecosystem == PYPI:
        return re.sub(r"[-_.]+", "-", name).lower()
    return name.strip().lower()


@dataclass(frozen=True, order=True)
class SemVer:
    """A semantic version, ordered as semver.org says (a pre-release sorts before its release)."""

    major: int
    minor: int
    patch: int
    release: int  # 1 for a release, 0 for a pre-release (sorts first)
    pre: tuple[tuple[int, int | str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> SemVer:
        """Parse `1.2.3`, `1.2.3-beta.1`, `v1.2`; ValueError when it is not a version."""
        match = _SEMVER.match(text.strip())
        if match is None:
            raise ValueError(f"not a semantic version: {text!r}")
        major, minor, patch, pre = match.groups()
        parts: list[tuple[int, int | str]] = []
        for item in (pre or "").split(".") if pre else ():
            parts.append((0, int(item)) if item.isdigit() else (1, item))
        return cls(int(major), int(minor or 0), int(patch or 0), 0 if pre else 1, tuple(parts))


def parse_version(ecosystem: str, text: str) -> Any:
    """A comparable version of the ecosystem; ValueError when the text is not one."""
    if ecosystem == PYPI:
        try:
            return Version(text)
        except InvalidVersion as exc:
            raise ValueError(str(exc)) from None
    return SemVer.parse(text)


@dataclass(frozen=True)
class Match:
    """One advisory that affects a package version."""

    id: str
    summary: str
    aliases: tuple[str, ...] = ()
    severity: str = "high"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id,
            "summary": self.summary,
            "aliases": list(self.aliases),
            "severity": self.severity,
        }


@dataclass
class Advisories:
    """The loaded set, indexed by (ecosystem, normalised package name)."""

    index: dict[tuple[str, str], list[tuple[Mapping[str, Any], Mapping[str, Any]]]] = field(
        default_factory=dict
    )
    count: int = 0

    def add(self, record: Mapping[str, Any]) -> None:
        """Index one OSV record (entries of other ecosystems are skipped)."""
        if not isinstance(record, Mapping) or not isinstance(record.get("id"), str):
            raise OsvError("an OSV record needs a string `id`")
        self.count += 1
        for affected in record.get("affected") or ():
            package = affected.get("package") if isinstance(affected, Mapping) else None
            if not isinstance(package, Mapping):
                continue
            ecosystem, name = package.get("ecosystem"), package.get("name")
            if ecosystem not in ECOSYSTEMS or not isinstance(name, str):
                continue
            key = (ecosystem, normalise_name(ecosystem, name))
            self.index.setdefault(key, []).append((record, affected))

    def matches(self, ecosystem: str, name: str, version: str) -> list[Match]:
        """The advisories affecting `name` at `version`, by id (none for an unparsable one)."""
        entries = self.index.get((ecosystem, normalise_name(ecosystem, name)), [])
        try:
            parsed = parse_version(ecosystem, version)
        except ValueError:
            return []
        found: dict[str, Match] = {}
        for record, affected in entries:
            if _affects(ecosystem, affected, version, parsed):
                found[record["id"]] = Match(
                    id=record["id"],
                    summary=str(record.get("summary") or record.get("details") or "")[:300],
                    aliases=tuple(sorted(str(a) for a in record.get("aliases") or ())),
                    severity=_severity(record),
                )
        return [found[k] for k in sorted(found)]

    def records(self) -> list[Mapping[str, Any]]:
        """Every indexed record once, by id (what the sandbox hands its scanner)."""
        seen: dict[str, Mapping[str, Any]] = {}
        for entries in self.index.values():
            for record, _ in entries:
                seen.setdefault(record["id"], record)
        return [seen[k] for k in sorted(seen)]


def _severity(record: Mapping[str, Any]) -> str:
    """The record's severity word (`database_specific.severity`), high when it names none."""
    specific = record.get("database_specific")
    word = specific.get("severity") if isinstance(specific, Mapping) else None
    word = str(word or "").lower()
    return {"moderate": "medium"}.get(word, word) if word else "high"


def _affects(ecosystem: str, affected: Mapping[str, Any], raw: str, version: Any) -> bool:
    """Whether one `affected[]` entry covers the version."""
    if raw in (affected.get("versions") or ()):
        return True
    for rng in affected.get("ranges") or ():
        if not isinstance(rng, Mapping) or rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
            continue
        if _in_range(ecosystem, rng.get("events") or [], version):
            return True
    return False


def _in_range(ecosystem: str, events: Iterable[Mapping[str, Any]], version: Any) -> bool:
    """Evaluate a range's events in version order: introduced opens, fixed/last_affected close."""
    ordered: list[tuple[Any, int, str]] = []
    for event in events:
        if not isinstance(event, Mapping):
            continue
        for kind, order in (("introduced", 0), ("fixed", 1), ("last_affected", 2)):
            if kind in event:
                value = str(event[kind])
                if kind == "introduced" and value == "0":
                    ordered.append((None, order, kind))
                    continue
                try:
                    ordered.append((parse_version(ecosystem, value), order, kind))
                except ValueError:
                    continue
    ordered.sort(key=lambda item: (item[0] is not None, item[0] or 0, item[1]))
    affected = False
    for at, _, kind in ordered:
        if kind == "introduced":
            if at is None or at <= version:
                affected = True
        elif kind == "fixed":
            if at <= version:
                affected = False
        elif kind == "last_affected" and at < version:
            affected = False
    return affected


def _documents(path: Path) -> Iterator[Any]:
    """The parsed JSON documents under `path` (a file, or every *.json of a directory)."""
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    for item in files:
        if item.stat().st_size > MAX_FILE_BYTES:
            raise OsvError(f"{item.name} is larger than {MAX_FILE_BYTES} bytes")
        try:
            yield json.loads(item.read_bytes())
        except (ValueError, UnicodeDecodeError) as exc:
            raise OsvError(f"{item.name} is not JSON: {exc}") from None


def load(path: str | Path) -> Advisories:
    """Load the advisory set at `path`; OsvError when it is missing or malformed."""
    root = Path(path)
    if not root.exists():
        raise OsvError(f"no OSV advisories at {root}")
    advisories = Advisories()
    for doc in _documents(root):
        for record in doc if isinstance(doc, list) else [doc]:
            advisories.add(record)
    return advisories


def from_records(records: Iterable[Mapping[str, Any]]) -> Advisories:
    """An advisory set from records already in memory."""
    advisories = Advisories()
    for record in records:
        advisories.add(record)
    return advisories
