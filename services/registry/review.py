"""Tool review: fingerprints, tool-poisoning flags, diffs and the plan a new listing implies."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

# the poisoning check is pure and shared with the sandboxed scanner; re-exported for callers here
from libs.common.poisoning import (  # noqa: F401
    CROSS_TOOL_PATTERNS,
    INVISIBLE,
    MIN_FOREIGN,
    POISON_PATTERNS,
    WORD_RUN,
    ForeignNames,
    foreign_names,
    poisoning_flags,
)

DEFINITION_FIELDS = ("name", "title", "description", "input_schema", "output_schema", "annotations")
# in the definition only when the tool declares it: a tool without it keeps the fingerprint it had
# before the registry recorded it
OPTIONAL_FIELDS = ("execution",)


def definition(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a tool that make up its definition (what the fingerprint covers)."""
    out = {
        "name": tool.get("name"),
        "title": tool.get("title"),
        "description": tool.get("description") or "",
        "input_schema": tool.get("input_schema") or {},
        "output_schema": tool.get("output_schema"),
        "annotations": tool.get("annotations"),
    }
    for name in OPTIONAL_FIELDS:
        if tool.get(name) is not None:
            out[name] = tool[name]
    return out


def fingerprint(tool: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of the tool's definition."""
    canonical = orjson.dumps(definition(tool), option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict[str, Any]:
    """The definition fields that differ: {field: {"before", "after"}}."""
    old = definition(before or {})
    new = definition(after)
    return {
        f: {"before": old.get(f), "after": new.get(f)}
        for f in DEFINITION_FIELDS + OPTIONAL_FIELDS
        if old.get(f) != new.get(f)
    }


@dataclass
class ToolChange:
    """One tool's fate in a refresh."""

    name: str
    kind: str  # discovered | quarantined | changed | restored | removed
    tool: dict[str, Any] = field(default_factory=dict)
    state: str = "approved"
    flags: list[str] = field(default_factory=list)


def plan(
    stored: Mapping[str, Mapping[str, Any]],
    listed: list[dict[str, Any]],
    *,
    first_discovery: bool,
    policy: str,
    foreign_tools: Iterable[str] | ForeignNames = (),
) -> list[ToolChange]:
    """What to do with each tool given the stored rows (by name) and a fresh listing."""
    foreign = ForeignNames.of(foreign_tools)
    changes: list[ToolChange] = []
    seen: set[str] = set()
    for tool in listed:
        name = tool["name"]
        if name in seen:
            continue
        seen.add(name)
        fp = fingerprint(tool)
        flags = poisoning_flags(tool, foreign)
        row = stored.get(name)
        if row is None:
            trusted = first_discovery or policy == "auto_approve"
            state = "approved" if trusted and not flags else "quarantined"
            changes.append(ToolChange(name, "discovered", tool, state, flags))
            continue
        if row["fingerprint"] == fp:
            continue
        approved = row.get("approved")
        if approved is not None and fingerprint(approved) == fp:
            changes.append(ToolChange(name, "restored", tool, "approved", flags))
        elif row["state"] == "approved":
            changes.append(ToolChange(name, "quarantined", tool, "quarantined", flags))
        else:
            changes.append(ToolChange(name, "changed", tool, row["state"], flags))
    for name in stored:
        if name not in seen:
            changes.append(ToolChange(name, "removed", state="removed"))
    return changes
