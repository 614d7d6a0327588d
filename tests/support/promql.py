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

# Metrics an alert reads that no Switchboard service exports, each with why it cannot be here:
# the static check accepts them and the live stack's check (tests/e2e/test_monitoring.py) does
# not ask them for data. Everything else must come from the services or Prometheus itself.
EXTERNAL_METRICS = {
    "certmanager_certificate_expiration_timestamp_seconds": (
        "exported by cert-manager's controller for the Certificates it manages (the Ingress's "
        "TLS); cert-manager is a cluster add-on, not part of the stack, and cannot run here"
    ),
}


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


def is_external(selector: str) -> bool:
    """Whether a selector reads a metric of EXTERNAL_METRICS."""
    return metric_name(selector) in EXTERNAL_METRICS


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
