"""Who may read and write which servers (docs/TENANCY.md): the shared rule, and its SQL form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libs.common import tenancy
from libs.common.authn import Principal, ServerRef
from libs.common.errors import Forbidden, NotFound


def admin_orgs(principal: Principal) -> list[str]:
    """Orgs (ids) in which the principal is at least admin."""
    return [org for org in principal.orgs if principal.has_org_role(org, "admin")]


@dataclass(frozen=True)
class Visibility:
    """What a principal may read, in the shape the list queries filter on.

    The shape is SQL, so totals and pages stay right: everything, or servers of orgs it
    administers (owned or shared with them), of its teams (owner team within the server's org),
    of its grants (by server id, held by the owning org or one it is shared with), and single
    tools of narrowed grants."""

    everything: bool
    orgs: list[str]
    team_orgs: list[str]
    team_names: list[str]
    grant_servers: list[str]  # server ids of grants (any), with...
    grant_orgs: list[str]  # ...the org holding each
    whole_servers: list[str]  # server ids of grants not narrowed to tools, with...
    whole_orgs: list[str]  # ...the org holding each
    tool_servers: list[str]  # (server id, org, tool) of grants narrowed to tools
    tool_orgs: list[str]
    tool_names: list[str]


def visibility(principal: Principal) -> Visibility:
    """The servers and tools `principal` may read, for a filtered listing."""
    if principal.is_platform_admin:
        return Visibility(True, [], [], [], [], [], [], [], [], [], [])
    readable = [g for g in principal.grants if g.server_id and g.org and g.permissions]
    whole = [g for g in readable if g.tools is None]
    narrow = [(g, tool) for g in readable if g.tools is not None for tool in g.tools]
    return Visibility(
        everything=False,
        orgs=admin_orgs(principal),
        team_orgs=[org for org, _ in principal.team_orgs],
        team_names=[team for _, team in principal.team_orgs],
        grant_servers=[str(g.server_id) for g in readable],
        grant_orgs=[str(g.org) for g in readable],
        whole_servers=[str(g.server_id) for g in whole],
        whole_orgs=[str(g.org) for g in whole],
        tool_servers=[str(g.server_id) for g, _ in narrow],
        tool_orgs=[str(g.org) for g, _ in narrow],
        tool_names=[tool for _, tool in narrow],
    )


def ref(server: Any) -> ServerRef:
    """The ServerRef of a server row (rows carry `shared_with`)."""
    return tenancy.server_ref(server)


def can(principal: Principal, permission: str, server: Any, tool: str | None = None) -> bool:
    """True when the principal may `permission` the server (or one of its tools)."""
    return tenancy.may(principal, permission, ref(server), tool)


def reads_whole(principal: Principal, server: Any) -> bool:
    """True when the principal may read the whole server (its resources and prompts).

    Not only the tools a narrowed grant names."""
    return tenancy.reads_whole(principal, ref(server))


def inspects(principal: Principal, server: Any) -> bool:
    """True when the principal reaches the server through its owning org (not only a share).

    It then sees its secrets' names and, as platform admin, whom it is shared with."""
    return tenancy.may(principal, "read", ref(server), via_share=False)


def require_inspect(principal: Principal, server: Any) -> None:
    """403 for a server the principal reaches only through a share.

    Its sources (their URLs and header names) are the owning org's."""
    if not inspects(principal, server):
        raise Forbidden(
            f"{server['name']!r} is lent to your org; its sources are its own org's.",
            details={"server": server["name"]},
        )


def require_read(
    principal: Principal, server: Any, ref_: str, missing: NotFound | None = None
) -> None:
    """404 (`missing`, else the server's) when the server is invisible to the principal.

    Its existence, and its name, are not revealed."""
    if not can(principal, "read", server):
        raise missing or NotFound(f"Server {ref_!r} not found.", details={"server": ref_})


def require_write(
    principal: Principal, server: Any, ref_: str, missing: NotFound | None = None
) -> None:
    """404 when invisible, 403 when visible but not writable."""
    require_read(principal, server, ref_, missing)
    if not can(principal, "write", server):
        raise Forbidden(
            f"Changing {server['name']!r} needs the write grant or the org admin role.",
            details={"server": server["name"], "permission": "write"},
        )


def holds_secrets(principal: Principal, server: Any) -> bool:
    """True for those who may carry a server's stored secrets to a new destination.

    Those are platform admins and admins of the owning org (a `write` grant may not,
    docs/TENANCY.md)."""
    if principal.is_platform_admin:
        return True
    org = tenancy.org_id(principal, server["org"])
    return org is not None and principal.has_org_role(org, "admin")


def require_trust(principal: Principal, server: Any) -> None:
    """403 unless the principal may vouch for a server's annotations (`trusted`).

    Those who may are those who hold its secrets (platform admins, admins of its org); a
    `write` grant is not enough."""
    if holds_secrets(principal, server):
        return
    raise Forbidden(
        f"Marking {server['name']!r} trusted needs the admin role in its organisation.",
        details={"server": server["name"], "field": "trusted", "required_role": "admin"},
    )


def creation_org(principal: Principal, org: str | None) -> str | None:
    """The org (its id) a new server of a non-platform-admin belongs to.

    The named one (by id or slug) or the caller's; 404 when the caller is not in it, 403 when
    not its admin. Platform admins' org references are resolved by the caller (they may name
    any org)."""
    if principal.is_platform_admin:
        return org
    org = tenancy.org_id(principal, org) if org else principal.org
    if org is not None and principal.role_in(org) is None:
        raise NotFound(f"Organisation {org!r} not found.", details={"org": org})
    if org is None or not principal.has_org_role(org, "admin"):
        raise Forbidden(
            "Registering a server needs the admin role in its organisation.",
            details={"org": org, "required_role": "admin"},
        )
    return org
