"""Scores: weights, breakdowns, the global score and the grade."""

from __future__ import annotations

import pytest

from libs.scan import scoring

ALL = ("ARCHIVE_SAFETY", "SECRET_EXPOSED", "DANGEROUS_CODE_PYTHON", "DANGEROUS_CODE_JS",
       "TOOL_POISONING", "VULNERABLE_DEPENDENCY", "DEPENDENCY_MANIFEST", "LOCKFILE_PRESENT",
       "LICENSE_DECLARED", "README_PRESENT", "TESTS_PRESENT", "CI_CONFIG")  # fmt: skip


def results(**failed: int) -> dict[str, dict]:
    out = {cid: {"passed": True, "findings": 0, "evidence": []} for cid in ALL}
    out["README_PRESENT"]["documentation"] = 100
    for cid, findings in failed.items():
        out[cid] = {"passed": False, "findings": findings, "evidence": []}
    return out


def test_all_passed_scores_100_and_a() -> None:
    scored = scoring.score(results())
    assert scored["global_score"] == 100 and scored["grade"] == "A"
    assert {k: v["weight"] for k, v in scored["scores"].items()} == scoring.WEIGHTS
    assert scored["scoring_version"] == scoring.SCORING_VERSION


def test_breakdowns_and_the_weighted_global_score() -> None:
    scored = scoring.score(
        results(SECRET_EXPOSED=1, VULNERABLE_DEPENDENCY=2, LOCKFILE_PRESENT=1, CI_CONFIG=1)
    )
    sec, sup, mat = (scored["scores"][k] for k in ("security", "supply_chain", "maturity"))
    assert sec["breakdown"] == {"vulnerabilities": 30, "secrets": 50, "code_quality": 100}
    assert sec["score"] == 60
    assert sup["breakdown"] == {"dependencies": 100, "licenses": 100, "lockfile": 40}
    assert sup["score"] == 80
    assert mat["breakdown"] == {"documentation": 100, "tests": 100, "ci_cd": 0}
    assert mat["score"] == 67
    assert scored["global_score"] == round(0.5 * 60 + 0.3 * 80 + 0.2 * 67) == 67
    assert scored["grade"] == "D"


def test_poisoned_tools_weigh_on_code_quality_and_scores_stay_in_range() -> None:
    scored = scoring.score(results(TOOL_POISONING=5, DANGEROUS_CODE_PYTHON=9, SECRET_EXPOSED=9))
    breakdown = scored["scores"]["security"]["breakdown"]
    assert breakdown["code_quality"] == 0 and breakdown["secrets"] == 0
    assert all(0 <= s["score"] <= 100 for s in scored["scores"].values())


@pytest.mark.parametrize(
    ("score", "grade"),
    [(100, "A"), (90, "A"), (89, "B"), (80, "B"), (70, "C"), (60, "D"), (59, "F")],
)
def test_grades(score: int, grade: str) -> None:
    assert scoring.grade(score) == grade
