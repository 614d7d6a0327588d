"""The audit WHERE builder: the shared one plus the visibility clause."""

from __future__ import annotations

from libs.common import sql
from services.audit.visibility import Scope


class Where(sql.Where):
    """Conditions joined with AND, with the clause that limits rows to a scope."""

    def scope(self, scope: Scope, org_col: str, principal_col: str) -> None:
        """Restrict to the rows the scope allows."""
        if scope.everything:
            return
        self.add(
            f"({org_col} = ANY({{}}::text[]) OR {principal_col} = ANY({{}}::text[]))",
            list(scope.orgs),
            list(scope.principals),
        )
