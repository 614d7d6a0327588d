"""Scores of a scan: three weighted sub-scores (0-100, with breakdowns), a global score, a grade.

security (0.5)      = mean(vulnerabilities, secrets, code_quality)
supply_chain (0.3)  = mean(dependencies, licenses, lockfile)
maturity (0.2)      = mean(documentation, tests, ci_cd)
global              = round(0.5 * security + 0.3 * supply_chain + 0.2 * maturity)
Grades: A >= 90, B >= 80, C >= 70, D >= 60, else F. Integers only, from the control results
alone: the same source scores the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SCORING_VERSION = "v1.0"
WEIGHTS = {"security": 0.5, "supply_chain": 0.3, "maturity": 0.2}
GRADES = ((90, "A"), (80, "B"), (70, "C"), (60, "D"))


def _clamp(value: float) -> int:
    """An integer score in 0..100."""
    return max(0, min(100, round(value)))


def _mean(values: Mapping[str, int]) -> int:
    """The rounded mean of a breakdown."""
    return _clamp(sum(values.values()) / len(values))


def grade(score: int) -> str:
    """The letter of a global score."""
    for floor, letter in GRADES:
        if score >= floor:
            return letter
    return "F"


def breakdowns(results: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Each dimension's sub-category scores from the control results (by control id)."""

    def findings(cid: str) -> int:
        result = results.get(cid) or {}
        return 0 if result.get("passed", True) else int(result.get("findings") or 1)

    def passed(cid: str) -> bool:
        return bool((results.get(cid) or {}).get("passed"))

    code_quality = 100 - 15 * findings("DANGEROUS_CODE_PYTHON") - 10 * findings("DANGEROUS_CODE_JS")
    code_quality -= 50 * min(findings("TOOL_POISONING"), 2)
    license_result = results.get("LICENSE_DECLARED") or {}
    declared = bool(license_result.get("evidence"))  # a license file, not an SPDX one
    licenses = 100 if license_result.get("passed") else (40 if declared else 0)
    documentation = int(((results.get("README_PRESENT") or {}).get("documentation")) or 0)
    return {
        "security": {
            "vulnerabilities": _clamp(100 - 35 * findings("VULNERABLE_DEPENDENCY")),
            "secrets": _clamp(100 - 50 * findings("SECRET_EXPOSED")),
            "code_quality": _clamp(code_quality),
        },
        "supply_chain": {
            "dependencies": 100 if passed("DEPENDENCY_MANIFEST") else 30,
            "licenses": licenses,
            "lockfile": 100 if passed("LOCKFILE_PRESENT") else 40,
        },
        "maturity": {
            "documentation": documentation,
            "tests": 100 if passed("TESTS_PRESENT") else 0,
            "ci_cd": 100 if passed("CI_CONFIG") else 0,
        },
    }


def score(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """{"global_score", "grade", "scores": {dimension: {"score", "weight", "breakdown"}}}."""
    parts = breakdowns(results)
    scores = {
        name: {"score": _mean(parts[name]), "weight": weight, "breakdown": parts[name]}
        for name, weight in WEIGHTS.items()
    }
    total = _clamp(sum(scores[n]["score"] * w for n, w in WEIGHTS.items()))
    return {"global_score": total, "grade": grade(total), "scores": scores,
            "scoring_version": SCORING_VERSION}  # fmt: skip
