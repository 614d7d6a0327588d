"""Org policies on catalog versions: the one evaluator the registry (CI) and the gateway share.

Pure: policies, what is known of a version (its certification) and the org's approvals in, a
verdict out. Policies are tried by priority (lower first, then name), enabled ones only; the first
that matches decides; none matching allows (docs/CATALOG.md, "Policies and CI")."""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from license_expression import ExpressionError, Licensing, get_spdx_licensing

ACTIONS = ("ALLOW", "DENY", "REQUIRE_APPROVAL")
TARGET_TYPES = ("SCORE", "LICENSE", "NAME", "CONTROL")
ALLOWED = "ALLOWED"
DENIED = "DENIED"
REQUIRES_APPROVAL = "REQUIRES_APPROVAL"
SCORE_RE = re.compile(r"^(min|max):(\d{1,3})$")
CONTROL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_NAME_GLOB = 200


@dataclass(frozen=True)
class Rule:
    """An org policy as the evaluator (and the gateway, through the registry's RPC) sees it."""

    id: str
    name: str
    action: str  # ALLOW | DENY | REQUIRE_APPROVAL
    target_type: str  # SCORE | LICENSE | NAME | CONTROL
    target_value: str
    priority: int = 100
    enabled: bool = True


@dataclass(frozen=True)
class Certification:
    """What is known of the catalog version a server or a CI request names.

    `global_score` None: the version has no snapshot (not scanned)."""

    mcp_id: str
    mcp: str
    version_id: str
    visible_version: str
    global_score: int | None = None
    grade: str | None = None
    license: str | None = None
    failed_controls: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    """ALLOWED, DENIED or REQUIRES_APPROVAL, with the policy that decided and why."""

    result: str
    policy: Rule | None = None
    reason: str | None = None

    @property
    def allowed(self) -> bool:
        """True when the version may be used."""
        return self.result == ALLOWED

    def matched_policy(self) -> dict[str, str] | None:
        """`{"id", "name"}` of the deciding policy, or None."""
        return {"id": self.policy.id, "name": self.policy.name} if self.policy else None


@functools.cache
def _licensing() -> Licensing:
    """The SPDX licence index (loaded once)."""
    return get_spdx_licensing()


def license_keys(value: str) -> set[str] | None:
    """The SPDX ids a licence value uses (a comma list or an expression), None when invalid.

    Keys compare case-insensitively: they are returned lower-cased."""
    licensing = _licensing()
    parts = [p.strip() for p in value.split(",")] if "," in value else [value.strip()]
    keys: set[str] = set()
    for part in parts:
        if not part:
            return None
        try:
            info = licensing.validate(part)
        except (ExpressionError, AttributeError):  # validate raises oddly on some bad input
            return None
        if info.errors or info.normalized_expression is None:
            return None
        keys.update(k.lower() for k in licensing.license_keys(info.normalized_expression))
    return keys or None


def target_problem(target_type: str, value: str) -> str | None:
    """Why `value` is not a valid target of `target_type`, or None when it is."""
    value = value.strip()
    if not value:
        return "must not be empty"
    if target_type == "SCORE":
        match = SCORE_RE.match(value)
        if match is None or not 0 <= int(match.group(2)) <= 100:
            return "must be min:N or max:N with 0 <= N <= 100"
    elif target_type == "LICENSE":
        if license_keys(value) is None:
            return "must be SPDX licence ids separated by commas, or an SPDX expression"
    elif target_type == "NAME":
        if len(value) > MAX_NAME_GLOB or any(c in value for c in "\r\n\x00"):
            return f"must be a glob of at most {MAX_NAME_GLOB} characters on one line"
    elif target_type == "CONTROL":
        if not all(CONTROL_RE.match(c) for c in control_ids(value)):
            return "must be control ids separated by commas"
    else:
        return f"target_type must be one of {', '.join(TARGET_TYPES)}"
    return None


def control_ids(value: str) -> list[str]:
    """The control ids of a CONTROL target (a comma list)."""
    return [c.strip() for c in value.split(",")]


def _score_match(rule: Rule, cert: Certification | None) -> tuple[bool, str]:
    """Whether a SCORE rule matches, and the reason it gives."""
    bound, raw = rule.target_value.strip().split(":")
    limit = int(raw)
    score = cert.global_score if cert is not None else None
    if score is None:
        # no snapshot, no score: only a rule that keeps versions out holds it back
        return rule.action != "ALLOW", "the version has not been scanned"
    below = score < limit
    if bound == "min":
        hit = not below if rule.action == "ALLOW" else below
        sign = ">=" if rule.action == "ALLOW" else "<"
    else:
        above = score > limit
        hit = not above if rule.action == "ALLOW" else above
        sign = "<=" if rule.action == "ALLOW" else ">"
    return hit, f"global score {score} {sign} {limit}"


def _matches(rule: Rule, name: str, cert: Certification | None) -> tuple[bool, str]:
    """Whether `rule` matches the MCP `name` at version `cert`, and the reason."""
    value = rule.target_value.strip()
    if rule.target_type == "SCORE":
        return _score_match(rule, cert)
    if rule.target_type == "NAME":
        return fnmatch.fnmatchcase(name, value), f"name {name!r} matches {value!r}"
    if rule.target_type == "LICENSE":
        wanted = license_keys(value) or set()
        used = license_keys(cert.license) if cert is not None and cert.license else None
        hit = sorted(wanted & (used or set()))
        listed = f"a licence the policy lists ({value})"
        return bool(hit), f"licence {cert.license if cert else None} is {listed}"
    if rule.target_type == "CONTROL":
        failed = set(cert.failed_controls) if cert is not None else set()
        hit = [c for c in control_ids(value) if c in failed]
        return bool(hit), f"failed control {', '.join(hit)}"
    return False, ""


def ordered(rules: Iterable[Rule]) -> list[Rule]:
    """The enabled rules in the order they are tried: priority, then name."""
    return sorted((r for r in rules if r.enabled), key=lambda r: (r.priority, r.name))


def evaluate(
    rules: Iterable[Rule],
    name: str,
    cert: Certification | None,
    approved: Collection[str] = (),
) -> Verdict:
    """The verdict on MCP `name` at version `cert` (None: not scanned, or not from the catalog).

    `approved`: ids of the versions the org approved (they pass a REQUIRE_APPROVAL policy)."""
    for rule in ordered(rules):
        try:
            hit, why = _matches(rule, name, cert)
        except ValueError:  # a stored target that no longer parses decides nothing
            continue
        if not hit:
            continue
        if rule.action == "ALLOW":
            return Verdict(ALLOWED, rule, f"Policy {rule.name!r} allowed: {why}")
        if rule.action == "DENY":
            return Verdict(DENIED, rule, f"Policy {rule.name!r} denied: {why}")
        if cert is not None and cert.version_id in approved:
            return Verdict(ALLOWED, rule, f"Policy {rule.name!r} required approval: approved")
        return Verdict(REQUIRES_APPROVAL, rule, f"Policy {rule.name!r} requires approval: {why}")
    return Verdict(ALLOWED)
