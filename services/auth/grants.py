"""Server grants of service tokens: bounded by what the token's org owns (its teams' grants)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from libs.common.authn import Grant


def as_grants(
    rows: Iterable[Mapping[str, Any]], team: str | None = None, org: str | None = None
) -> list[Grant]:
    """Grant objects from rows or dicts.

    Each has server, server_id, permissions, tools (and team, org)."""
    return [
        Grant(
            team=team if team is not None else str(r.get("team") or ""),
            server=r["server"],
            permissions=frozenset(r["permissions"]),
            tools=tuple(r["tools"]) if r.get("tools") is not None else None,
            server_id=str(r["server_id"]) if r.get("server_id") else None,
            org=org if org is not None else (str(r["org"]) if r.get("org") else None),
        )
        for r in rows
    ]


def _holds(held: Grant, permission: str, grant: Grant, tool: str | None) -> bool:
    """True when `held` (an org grant) gives `permission` on `grant`'s server (and tool)."""
    if held.server_id is None or held.server_id != grant.server_id:
        return False
    perms = set(held.permissions) | {"read"}
    return permission in perms and (tool is None or held.tools is None or tool in held.tools)


def owned(grant: Grant, org: Sequence[Grant]) -> bool:
    """True when the org's grants cover every permission of `grant` on its server and tools.

    A grant on every tool needs an org grant on every tool."""
    for permission in grant.permissions:
        if grant.tools is None:
            if not any(g.tools is None and _holds(g, permission, grant, None) for g in org):
                return False
        elif not all(any(_holds(g, permission, grant, t) for g in org) for t in grant.tools):
            return False
    return True


def bind(grants: Sequence[Grant], org: Sequence[Grant]) -> tuple[list[Grant], list[str]]:
    """Token grants named by server name or id, bound to the server ids of the org's grants.

    Also the names the org holds no grant on (for the 422 details)."""
    by_ref: dict[str, Grant] = {}
    for held in org:
        if held.server_id is not None:
            by_ref.setdefault(held.server, held)
            by_ref.setdefault(held.server_id, held)
    bound: list[Grant] = []
    unknown: list[str] = []
    for grant in grants:
        held = by_ref.get(grant.server)
        if held is None:
            unknown.append(grant.server)
            continue
        bound.append(
            Grant(
                team=grant.team,
                server=held.server,
                permissions=grant.permissions,
                tools=grant.tools,
                server_id=held.server_id,
                org=held.org,
            )
        )
    return bound, unknown


def not_owned(grants: Sequence[Grant], org: Sequence[Grant]) -> list[str]:
    """The servers of `grants` the org does not own as asked (for the 422 details)."""
    return [g.server for g in grants if not owned(g, org)]


def to_json(grants: Sequence[Grant]) -> list[dict[str, Any]]:
    """The stored (and shown) form of a token's grants."""
    return [
        {
            "server": g.server,
            "server_id": g.server_id,
            "permissions": sorted(g.permissions),
            "tools": list(g.tools) if g.tools is not None else None,
        }
        for g in grants
    ]
