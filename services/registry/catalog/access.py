"""Who may read a catalog MCP and its versions: public ones, or the caller's org (else 404).

An MCP of another org answers 404 as if it did not exist (docs/TENANCY.md); platform admins read
every one.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from libs.common.errors import NotFound
from libs.common.principal import Principal

MCP_COLUMNS = (
    "id, name, org, visibility, title, description, repo_url, homepage, language, license,"
    " category_id, featured, created_by, created_at, updated_at"
)
VERSION_COLUMNS = (
    "id, mcp_id, visible_version, source_kind, source_url, git_ref, commit_sha, source_size,"
    " file_count, sha256, status, status_error, created_by, created_at, updated_at"
)


def _uuid(ref: str) -> uuid.UUID | None:
    """A reference read as a UUID, or None."""
    try:
        return uuid.UUID(str(ref))
    except ValueError:
        return None


def can_read(principal: Principal | None, mcp: Any) -> bool:
    """Public, the caller's org, or a platform admin."""
    if mcp["visibility"] == "public":
        return True
    if principal is None or mcp["org"] is None:
        return principal is not None and principal.is_platform_admin
    own = mcp["org"] in principal.orgs or mcp["org"] == principal.org
    return principal.is_platform_admin or own


async def readable_mcp(conn: asyncpg.Connection, principal: Principal | None, ref: str) -> Any:
    """The MCP by id (or name) that the caller may read; NotFound otherwise."""
    key = _uuid(ref)
    if key is not None:
        rows = await conn.fetch(f"SELECT {MCP_COLUMNS} FROM registry.mcps WHERE id = $1", key)
    else:
        rows = await conn.fetch(
            f"SELECT {MCP_COLUMNS} FROM registry.mcps WHERE name = $1 ORDER BY org NULLS FIRST",
            ref,
        )
    for row in rows:
        if can_read(principal, row):
            return row
    raise NotFound(f"MCP {ref!r} not found.", details={"mcp": ref})


async def readable_version(
    conn: asyncpg.Connection, principal: Principal | None, mcp_ref: str, version_ref: str
) -> tuple[Any, Any]:
    """(mcp, version): the version by id (or visible_version) of a readable MCP; else NotFound."""
    mcp = await readable_mcp(conn, principal, mcp_ref)
    key = _uuid(version_ref)
    column = "id" if key is not None else "visible_version"
    version = await conn.fetchrow(
        f"SELECT {VERSION_COLUMNS} FROM registry.mcp_versions WHERE mcp_id = $1 AND {column} = $2",
        mcp["id"],
        key if key is not None else version_ref,
    )
    if version is None:
        raise NotFound(
            f"Version {version_ref!r} not found.", details={"mcp": mcp_ref, "version": version_ref}
        )
    return mcp, version
