"""Who may read and write which servers: platform admin, org admin, or a team grant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libs.common.authn import Principal
from libs.common.errors import Forbidden, NotFound


def admin_orgs(principal: Principal) -> list[str]:
    """Orgs in which the principal is at least admin."""
    return [org for org in principal.orgs if principal.has_org_role(org, "admin")]


def visibility(principal: Principal) -> tuple[list[str] | None, list[str]]:
    """(server names by grant or None for all, orgs whose servers are all visible)."""
    if principal.is_platform_admin:
        return None, []
    names = sorted({g.server for g in principal.grants if g.covers("read", g.server, None)})
    return names, admin_orgs(principal)


@dataclass(frozen=True)
class ToolVisibility:
    """Which tools a principal may read: everything, whole servers, or (server, tool) pairs."""

    everything: bool
    servers: list[str]  # every tool of these servers (grants not narrowed to tools)
    orgs: list[str]  # every tool of these orgs' servers (org admin)
    teams: list[str]  # every tool of servers these teams own
    pairs: list[tuple[str, str]]  # single tools of grants narrowed to tools


def tool_visibility(principal: Principal) -> ToolVisibility:
    """The tools `principal` may read, for a filtered listing."""
    if principal.is_platform_admin:
        return ToolVisibility(True, [], [], [], [])
    whole = {
        g.server for g in principal.grants if g.tools is None and g.covers("read", g.server, None)
    }
    pairs = {
        (g.server, tool)
        for g in principal.grants
        if g.tools is not None and g.server not in whole
        for tool in g.tools
        if g.covers("read", g.server, tool)
    }
    return ToolVisibility(
        False, sorted(whole), admin_orgs(principal), list(principal.teams), sorted(pairs)
    )


def team_role(principal: Principal, team: str) -> str | None:
    """The principal's role in `team`, when its credential carries team roles (`team_roles`)."""
    roles = getattr(principal, "team_roles", None) or {}
    return roles.get(team)


def can(principal: Principal, permission: str, server: Any, tool: str | None = None) -> bool:
    """True when the principal may `permission` the server (or one of its tools).

    Org admins and platform admins may everything; members of the server's owner team may read
    it, and the owner team's admins (team role admin or owner) may also write it; otherwise a
    grant decides (one narrowed to tools covers only those tools).
    """
    org = server["org"]
    if org and principal.has_org_role(org, "admin"):
        return True
    team = server.get("owner_team")
    if team and team in principal.teams:
        if permission == "read":
            return True
        if team_role(principal, team) in ("admin", "owner"):
            return True
    return principal.permits(permission, server["name"], tool)


def require_read(principal: Principal, server: Any, ref: str) -> None:
    """404 when the server is invisible to the principal (existence is not revealed)."""
    if not can(principal, "read", server):
        raise NotFound(f"Server {ref!r} not found.", details={"server": ref})


def require_write(principal: Principal, server: Any, ref: str) -> None:
    """404 when invisible, 403 when visible but not writable."""
    require_read(principal, server, ref)
    if not can(principal, "write", server):
        raise Forbidden(
            f"Changing {server['name']!r} needs the write grant or the org admin role.",
            details={"server": server["name"], "permission": "write"},
        )


def require_trust(principal: Principal, server: Any) -> None:
    """403 unless the principal may vouch for a server's annotations (`trusted`): platform
    admins and admins of the server's org; a `write` grant is not enough."""
    org = server["org"]
    if principal.is_platform_admin or (org and principal.has_org_role(org, "admin")):
        return
    raise Forbidden(
        f"Marking {server['name']!r} trusted needs the admin role in its organisation.",
        details={"server": server["name"], "field": "trusted", "required_role": "admin"},
    )


def creation_org(principal: Principal, org: str | None) -> str | None:
    """The org a new server belongs to; 403 unless the principal administers it."""
    org = org or principal.org
    if principal.is_platform_admin:
        return org
    if org is None or not principal.has_org_role(org, "admin"):
        raise Forbidden(
            "Registering a server needs the admin role in its organisation.",
            details={"org": org, "required_role": "admin"},
        )
    return org
