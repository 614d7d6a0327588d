"""The vector selectors and metric names of PromQL expressions, and the shipped monitoring files.

Enough of PromQL for the expressions of deploy/monitoring: grouping clauses, range brackets,
functions and keywords are set aside; what remains are vector selectors (a name and matchers)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
DASHBOARDS = MONITORING / "dashboards"
RULES = MONITORING / "alerts.rules.yml"

_GROUPING = re.compile(
    r"\b(by|without|on|ignoring)\s*\([^)]*\)|\b(group_left|group_right)(\s*\([^)]*\))?"
)
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_RANGE = re.compile(r"\[[^\]]*\]")
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*(\{[^}]*\})?(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
_NAMES = re.compile(r"__name__\s*=\s*\"([^\"]+)\"")


def selectors(expr: str) -> list[str]:
    """Each vector selector of `expr`, as a query of its own (`name{matchers}`), in order."""
    text = _OFFSET.sub("", _RANGE.sub("", _GROUPING.sub("", expr)))
    found: list[str] = []
    for match in _SELECTOR.finditer(text):
        name, matchers, call = match.groups()
        if call or name in _KEYWORDS:
            continue  # a function or aggregation, or an operator
        selector = name + (matchers or "")
        if selector not in found:
            found.append(selector)
    return found


def metric_name(selector: str) -> str:
    """The metric name a selector reads."""
    named = _NAMES.search(selector)
    return named.group(1) if named else selector.split("{", 1)[0]


def dashboards() -> dict[str, dict[str, Any]]:
    """Every shipped dashboard by file name."""
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every query of every dashboard panel."""
    return [
        (name, panel["title"], target["expr"])
        for name, board in dashboards().items()
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def alert_rules() -> list[dict[str, Any]]:
    """Every rule of alerts.rules.yml."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def as_query(expr: str, rate_interval: str = "1m") -> str:
    """A dashboard expression with Grafana's `$__rate_interval` filled in, for Prometheus."""
    return expr.replace("$__rate_interval", rate_interval)
