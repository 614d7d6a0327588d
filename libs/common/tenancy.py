"""Who may reach a server: the one rule the registry, the sandbox and audit apply.

See docs/TENANCY.md. A server belongs to one org (or to the platform when it has none) and may be
shared with other orgs by a platform admin. Another org's server is invisible: callers answer 404.
The gateway applies the narrower grant-only rule of `Principal.permits` on its hot path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from libs.common.authn import Principal, ServerRef

ADMIN_TEAM_ROLES = ("admin", "owner")


def server_ref(row: Mapping[str, Any], shared_with: Iterable[str] | None = None) -> ServerRef:
    """A ServerRef from a server row or view (`id`, `name`, `org`, `owner_team`, `shared_with`)."""
    shared = shared_with if shared_with is not None else row.get("shared_with") or ()
    return ServerRef(
        id=str(row["id"]),
        name=str(row["name"]),
        org=str(row["org"]) if row.get("org") else None,
        owner_team=row.get("owner_team") or None,
        shared_with=frozenset(str(o) for o in shared),
    )


def org_id(principal: Principal, ref: str | None) -> str | None:
    """An org named by id or by slug, as the id the principal knows it by."""
    if ref is None:
        return None
    return principal.org_slugs.get(ref, ref)


def team_role(principal: Principal, team: str) -> str | None:
    """The principal's role in `team`, when its credential carries team roles (`team_roles`)."""
    roles = getattr(principal, "team_roles", None) or {}
    return roles.get(team)


def may(
    principal: Principal,
    permission: str,
    server: ServerRef,
    tool: str | None = None,
    *,
    via_share: bool = True,
) -> bool:
    """True when the principal may `permission` (read, execute, write) the server or its tool.

    Platform admins may everything; admins of the owning org may everything on its servers;
    members of the server's owner team (a team of the owning org, never a namesake elsewhere)
    may read it, the team's admins also write it; otherwise a grant decides, bound to the
    server's id and held by the owning org or an org the server is shared with (a share lends
    read and execute only). Admins of an org a server is shared with may read it (to grant it).
    `via_share=False` leaves shares out: what only the owning org may inspect (logs, status).
    """
    if principal.is_platform_admin:
        return True
    org = org_id(principal, server.org)
    if org is not None and principal.has_org_role(org, "admin"):
        return True
    if principal.member_of(org, server.owner_team):
        if permission == "read":
            return True
        if team_role(principal, server.owner_team or "") in ADMIN_TEAM_ROLES:
            return True
    if not via_share:
        return any(g.org == org and g.covers(permission, server, tool) for g in principal.grants)
    if permission == "read" and tool is None:
        if any(principal.has_org_role(o, "admin") for o in server.shared_with):
            return True
    return principal.permits(permission, server, tool)


def reads_whole(principal: Principal, server: ServerRef) -> bool:
    """True when the principal may read the whole server: its resources, prompts and completions.

    A grant narrowed to tools gives those tools only; every other way of reading (platform or
    org admin, owner team, a grant on every tool) gives the whole server."""
    if may(replace(principal, grants=()), "read", server):
        return True
    return any(g.tools is None and g.covers("read", server, None) for g in principal.grants)
