"""Org policies as the gateway enforces them: every org's rules and approvals, verdicts cached.

Filled from rpc.registry.policies and refreshed per org on `registry.policy.*` events; read on
the hot path without I/O. Only servers registered from the catalog (with a certification) are
judged: the policies speak of catalog versions (docs/CATALOG.md, "Enforcement at runtime")."""

from __future__ import annotations

from collections.abc import Iterable

from libs.common import policy
from libs.common.policy import Certification, Verdict
from libs.common.rpc_types import OrgPolicies

MAX_VERDICTS = 100_000


class PolicyBook:
    """Each org's enabled policies and approved versions; verdicts by (org, server, version)."""

    def __init__(self) -> None:
        self.orgs: dict[str, OrgPolicies] = {}
        self._approved: dict[str, frozenset[str]] = {}
        self._verdicts: dict[tuple[str, str, str], Verdict] = {}

    def replace(self, sets: Iterable[OrgPolicies]) -> None:
        """Every org's policies at once (a full load)."""
        self.orgs = {}
        self.update(sets)

    def update(self, sets: Iterable[OrgPolicies]) -> None:
        """Some orgs' policies (an org with none left is forgotten)."""
        for entry in sets:
            if entry.policies or entry.approved:
                self.orgs[entry.org] = entry
            else:
                self.orgs.pop(entry.org, None)
        self._approved = {org: frozenset(e.approved) for org, e in self.orgs.items()}
        self._verdicts.clear()

    def verdict(self, org: str | None, server: str, cert: Certification | None) -> Verdict | None:
        """Why `org` may not use the server (DENIED or REQUIRES_APPROVAL), else None."""
        if org is None or cert is None:
            return None
        entry = self.orgs.get(org)
        if entry is None or not entry.policies:
            return None
        key = (org, server, cert.version_id)
        hit = self._verdicts.get(key)
        if hit is None:
            hit = policy.evaluate(entry.policies, cert.mcp, cert, self._approved.get(org, ()))
            if len(self._verdicts) > MAX_VERDICTS:
                self._verdicts.clear()
            self._verdicts[key] = hit
        return None if hit.allowed else hit

    def forget_verdicts(self) -> None:
        """Drop cached verdicts (a server's certification may have changed)."""
        self._verdicts.clear()
