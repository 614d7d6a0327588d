"""Server grants of service tokens: bounded by what the token's org owns (its teams' grants)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from libs.common.authn import Grant


def as_grants(rows: Iterable[Mapping[str, Any]], team: str | None = None) -> list[Grant]:
    """Grant objects from rows or dicts with server, permissions, tools (and team)."""
    return [
        Grant(
            team=team if team is not None else str(r.get("team") or ""),
            server=r["server"],
            permissions=frozenset(r["permissions"]),
            tools=tuple(r["tools"]) if r.get("tools") is not None else None,
        )
        for r in rows
    ]


def owned(grant: Grant, org: Sequence[Grant]) -> bool:
    """True when the org's grants cover every permission of `grant` on its server and tools
    (a grant on every tool needs an org grant on every tool)."""
    for permission in grant.permissions:
        if grant.tools is None:
            if not any(g.tools is None and g.covers(permission, grant.server, None) for g in org):
                return False
        elif not all(any(g.covers(permission, grant.server, t) for g in org) for t in grant.tools):
            return False
    return True


def not_owned(grants: Sequence[Grant], org: Sequence[Grant]) -> list[str]:
    """The servers of `grants` the org does not own as asked (for the 422 details)."""
    return [g.server for g in grants if not owned(g, org)]


def to_json(grants: Sequence[Grant]) -> list[dict[str, Any]]:
    """The stored (and shown) form of a token's grants."""
    return [
        {
            "server": g.server,
            "permissions": sorted(g.permissions),
            "tools": list(g.tools) if g.tools is not None else None,
        }
        for g in grants
    ]
