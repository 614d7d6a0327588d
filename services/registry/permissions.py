"""Who may read and write which servers: platform admin, org admin, or a team grant."""

from __future__ import annotations

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


def can(principal: Principal, permission: str, server: Any) -> bool:
    """True when the principal may `permission` the server."""
    org = server["org"]
    if org and principal.has_org_role(org, "admin"):
        return True
    return principal.permits(permission, server["name"])


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
