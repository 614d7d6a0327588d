"""The gateway's policy book: only certified servers are judged, verdicts follow changes."""

from __future__ import annotations

from libs.common.policy import Certification, Rule
from libs.common.rpc_types import OrgPolicies
from services.gateway.policy_book import PolicyBook

CERT = Certification("m1", "mcp-calc", "v1", "commit-abc1234-2026-01-14", global_score=35)
DENY = Rule("p1", "Require Minimum Score", "DENY", "SCORE", "min:70")


def test_a_denied_version_is_refused_to_its_org_only() -> None:
    book = PolicyBook()
    book.replace([OrgPolicies("org-a", [DENY])])
    assert book.verdict("org-a", "calc", CERT).policy == DENY
    assert book.verdict("org-b", "calc", CERT) is None
    assert book.verdict(None, "calc", CERT) is None


def test_a_server_without_certification_is_not_judged() -> None:
    book = PolicyBook()
    book.replace([OrgPolicies("org-a", [DENY])])
    assert book.verdict("org-a", "calc", None) is None


def test_an_update_replaces_the_cached_verdict_and_an_empty_org_is_forgotten() -> None:
    book = PolicyBook()
    book.replace([OrgPolicies("org-a", [DENY])])
    assert book.verdict("org-a", "calc", CERT) is not None
    book.update([OrgPolicies("org-a", [DENY], approved=["v1"])])
    assert book.verdict("org-a", "calc", CERT) is not None  # DENY is not lifted by approval
    book.update([OrgPolicies("org-a")])
    assert "org-a" not in book.orgs
    assert book.verdict("org-a", "calc", CERT) is None


def test_an_approval_lets_a_held_version_through() -> None:
    hold = Rule("p2", "review", "REQUIRE_APPROVAL", "SCORE", "min:70")
    book = PolicyBook()
    book.replace([OrgPolicies("org-a", [hold])])
    assert book.verdict("org-a", "calc", CERT).result == "REQUIRES_APPROVAL"
    book.update([OrgPolicies("org-a", [hold], approved=["v1"])])
    assert book.verdict("org-a", "calc", CERT) is None
