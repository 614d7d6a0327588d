"""Building WHERE clauses with numbered parameters, and the visibility clause."""

from __future__ import annotations

from typing import Any

from services.audit.visibility import Scope


class Where:
    """Conditions joined with AND; `add` numbers the placeholders."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        """Register a parameter and return its placeholder."""
        self.args.append(value)
        return f"${len(self.args)}"

    def add(self, template: str, *values: Any) -> None:
        """Add a condition; `{}` in the template are replaced by placeholders in order."""
        self.parts.append(template.format(*(self.arg(v) for v in values)))

    def scope(self, scope: Scope, org_col: str, principal_col: str) -> None:
        """Restrict to the rows the scope allows."""
        if scope.everything:
            return
        self.add(
            f"({org_col} = ANY({{}}::text[]) OR {principal_col} = ANY({{}}::text[]))",
            list(scope.orgs),
            list(scope.principals),
        )

    @property
    def sql(self) -> str:
        """The WHERE clause (or nothing)."""
        return f" WHERE {' AND '.join(self.parts)}" if self.parts else ""
