"""The policy evaluator: order, each target type, approvals, validation of targets."""

from __future__ import annotations

import pytest

from libs.common.policy import (
    ALLOWED,
    DENIED,
    REQUIRES_APPROVAL,
    Certification,
    Rule,
    evaluate,
    license_keys,
    target_problem,
)


def rule(name: str, action: str, target_type: str, value: str, **kw) -> Rule:
    """A policy for a test."""
    return Rule(id=f"id-{name}", name=name, action=action, target_type=target_type,
                target_value=value, **kw)  # fmt: skip


def cert(score: int | None = 80, license: str | None = "MIT", failed=()) -> Certification:
    """A scanned version (score None: not scanned)."""
    return Certification(
        mcp_id="m1", mcp="mcp-db", version_id="v1", visible_version="commit-abc1234-2026-01-14",
        global_score=score, grade="B", license=license, failed_controls=list(failed),
    )  # fmt: skip


MIN70 = rule("Require Minimum Score", "DENY", "SCORE", "min:70", priority=20)


def test_no_policy_allows() -> None:
    verdict = evaluate([], "mcp-db", cert())
    assert verdict.result == ALLOWED
    assert verdict.policy is None


def test_a_score_below_the_minimum_is_denied_with_the_seed_reason() -> None:
    verdict = evaluate([MIN70], "mcp-db", cert(35))
    assert verdict.result == DENIED
    assert verdict.reason == "Policy 'Require Minimum Score' denied: global score 35 < 70"
    assert verdict.matched_policy() == {"id": "id-Require Minimum Score", "name": MIN70.name}


def test_a_score_at_the_minimum_passes() -> None:
    assert evaluate([MIN70], "mcp-db", cert(70)).result == ALLOWED


def test_an_unscanned_version_is_denied_by_a_score_deny() -> None:
    verdict = evaluate([MIN70], "mcp-db", cert(None))
    assert verdict.result == DENIED
    assert evaluate([MIN70], "mcp-db", None).result == DENIED


def test_a_max_score_deny_matches_above_the_bound() -> None:
    cap = rule("cap", "DENY", "SCORE", "max:50")
    assert evaluate([cap], "x", cert(51)).result == DENIED
    assert evaluate([cap], "x", cert(50)).result == ALLOWED


def test_a_score_allow_matches_at_or_above_the_minimum_and_decides_first() -> None:
    good = rule("good", "ALLOW", "SCORE", "min:90", priority=1)
    deny_all = rule("all", "DENY", "NAME", "*", priority=2)
    assert evaluate([good, deny_all], "x", cert(95)).policy == good
    assert evaluate([good, deny_all], "x", cert(89)).result == DENIED
    assert evaluate([good, deny_all], "x", cert(None)).result == DENIED


def test_a_max_score_allow_matches_at_or_below_the_bound() -> None:
    low = rule("low", "ALLOW", "SCORE", "max:10")
    assert evaluate([low], "x", cert(10)).policy == low
    assert evaluate([low], "x", cert(11)).policy is None


def test_lower_priority_number_goes_first_then_name() -> None:
    allow = rule("b-allow", "ALLOW", "NAME", "mcp-*", priority=5)
    deny = rule("a-deny", "DENY", "NAME", "mcp-*", priority=5)
    assert evaluate([allow, deny], "mcp-db", cert()).result == DENIED
    first = rule("z-allow", "ALLOW", "NAME", "mcp-*", priority=1)
    assert evaluate([allow, deny, first], "mcp-db", cert()).result == ALLOWED


def test_disabled_policies_are_skipped() -> None:
    off = rule("off", "DENY", "NAME", "*", enabled=False)
    assert evaluate([off], "mcp-db", cert()).result == ALLOWED


def test_a_name_glob_matches_the_mcp_name_only() -> None:
    deny = rule("no-fs", "DENY", "NAME", "mcp-file-*")
    assert evaluate([deny], "mcp-file-system", cert()).result == DENIED
    assert evaluate([deny], "mcp-database", cert()).result == ALLOWED


def test_a_licence_policy_matches_any_listed_licence_used() -> None:
    gpl = rule("no-gpl", "DENY", "LICENSE", "GPL-3.0-only, AGPL-3.0-only")
    assert evaluate([gpl], "x", cert(license="MIT OR GPL-3.0-only")).result == DENIED
    assert evaluate([gpl], "x", cert(license="Apache-2.0")).result == ALLOWED
    assert evaluate([gpl], "x", cert(license=None)).result == ALLOWED
    assert evaluate([gpl], "x", cert(license="not a licence")).result == ALLOWED


def test_a_control_policy_matches_a_failed_listed_control() -> None:
    secrets = rule("no-secrets", "DENY", "CONTROL", "SEC-001,SEC-002")
    assert evaluate([secrets], "x", cert(failed=["SEC-002"])).result == DENIED
    assert evaluate([secrets], "x", cert(failed=["MAT-001"])).result == ALLOWED


def test_require_approval_holds_back_until_the_version_is_approved() -> None:
    hold = rule("review", "REQUIRE_APPROVAL", "SCORE", "min:90")
    assert evaluate([hold], "x", cert(80)).result == REQUIRES_APPROVAL
    verdict = evaluate([hold], "x", cert(80), approved={"v1"})
    assert verdict.result == ALLOWED
    assert verdict.policy == hold
    assert evaluate([hold], "x", cert(80), approved={"v2"}).result == REQUIRES_APPROVAL


def test_a_stored_target_that_does_not_parse_decides_nothing() -> None:
    broken = rule("broken", "DENY", "SCORE", "min:abc")
    assert evaluate([broken], "x", cert()).result == ALLOWED


@pytest.mark.parametrize(
    ("target_type", "value"),
    [("SCORE", "min:70"), ("SCORE", "max:0"), ("SCORE", "min:100"), ("LICENSE", "MIT"),
     ("LICENSE", "MIT, Apache-2.0"), ("LICENSE", "GPL-2.0-only OR MIT"), ("NAME", "mcp-*"),
     ("CONTROL", "SEC-001, SUP-002")],
)  # fmt: skip
def test_valid_targets_have_no_problem(target_type: str, value: str) -> None:
    assert target_problem(target_type, value) is None


@pytest.mark.parametrize(
    ("target_type", "value"),
    [("SCORE", "min:101"), ("SCORE", "70"), ("SCORE", "min:-1"), ("SCORE", "avg:5"),
     ("LICENSE", "Not-A-Licence"), ("LICENSE", "MIT OR"), ("LICENSE", "MIT,,"), ("NAME", ""),
     ("NAME", "a\nb"), ("CONTROL", "SEC 001"), ("CONTROL", "SEC-001,"), ("OTHER", "x")],
)  # fmt: skip
def test_invalid_targets_are_named(target_type: str, value: str) -> None:
    assert target_problem(target_type, value)


def test_licence_keys_are_lower_cased_spdx_ids() -> None:
    assert license_keys("MIT OR Apache-2.0") == {"mit", "apache-2.0"}
    assert license_keys("") is None
