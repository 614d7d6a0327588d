"""Run every lint rule over a repository checkout."""

from __future__ import annotations

from pathlib import Path

from libs.devstack.lint.cycles import import_cycles
from libs.devstack.lint.rules import PER_FILE
from libs.devstack.lint.sources import Finding, sources


def lint(root: Path) -> list[Finding]:
    """Every finding of every rule under root, sorted by place."""
    parsed = sources(root)
    findings = [finding for source in parsed for rule in PER_FILE for finding in rule(source)]
    findings.extend(import_cycles(parsed))
    return sorted(set(findings))
