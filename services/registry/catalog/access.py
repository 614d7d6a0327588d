"""Who may read and change a catalog entry (docs/TENANCY.md).

Public MCPs are readable by anyone, anonymous callers included; private ones by their org's
members and platform admins only. Any other MCP answers 404, as if it did not exist."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
from asyncpg import Record

from libs.common.authn import Principal
from libs.common.errors import Forbidden, NotFound
from services.registry.store import catalog as store


def reader_orgs(principal: Principal | None) -> list[str] | None:
    """The orgs whose private MCPs the caller reads (None: all, for platform admins)."""
    if principal is None:
        return []
    if principal.is_platform_admin:
        return None
    return list(principal.orgs)


async def readable_mcp(conn: asyncpg.Connection, principal: Principal | None, ref: str) -> Record:
    """The MCP with id or name `ref` the caller may read, else 404."""
    rows = await store.find_mcps(conn, ref, reader_orgs(principal))
    if not rows:
        raise NotFound(f"MCP {ref!r} not found.", details={"mcp": ref})
    return rows[0]


async def readable_version(
    conn: asyncpg.Connection, principal: Principal | None, mcp_ref: str, version_ref: str
) -> tuple[Record, Record]:
    """The readable MCP and its version by id or visible_version, else 404."""
    mcp = await readable_mcp(conn, principal, mcp_ref)
    version = await store.get_version(conn, mcp["id"], version_ref)
    if version is None:
        raise NotFound(
            f"Version {version_ref!r} of MCP {mcp['name']!r} not found.",
            details={"mcp": mcp_ref, "version": version_ref},
        )
    return mcp, version


def require_mcp_admin(principal: Principal, mcp: Mapping[str, Any]) -> None:
    """403 unless an admin of the MCP's org (platform entries: platform admins only)."""
    org = mcp["org"]
    if principal.is_platform_admin:
        return
    if org is None or not principal.has_org_role(org, "admin"):
        raise Forbidden(
            f"Changing MCP {mcp['name']!r} needs the admin role in its organisation.",
            details={"org": org, "required_role": "admin"},
        )
