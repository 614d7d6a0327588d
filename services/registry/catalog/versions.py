"""New versions of an MCP from git, an uploaded tarball or a server.json; each enqueues its scan.

Inserting a version (status PENDING) and its VERSION_CREATED and SCAN_REQUESTED events share one
transaction; the scanner consumes SCAN_REQUESTED."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from libs.common import events as ev
from libs.common.errors import Conflict, Unprocessable
from services.registry import plans
from services.registry.catalog import scans, sources
from services.registry.catalog.schemas import VERSION
from services.registry.catalog.sources import Source
from services.registry.context import SCHEMA, Registry
from services.registry.store import catalog as store


def version_out(mcp: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """A version as the API shows it (the seed's fields, `tarball_url` included)."""
    return {
        "id": str(row["id"]),
        "mcp_id": str(row["mcp_id"]),
        "visible_version": row["visible_version"],
        "status": row["status"],
        "status_error": row["status_error"],
        "source_kind": row["source_kind"],
        "source_url": row["source_url"],
        "ref": row["git_ref"],
        "commit": row["commit_sha"],
        "source_size": row["source_size"],
        "file_count": row["file_count"],
        "sha256": row["sha256"],
        "tarball_url": f"/api/v1/mcps/{mcp['id']}/versions/{row['id']}/tarball",
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def add_git_version(
    reg: Registry,
    mcp: Mapping,
    ref: str | None,
    actor: str,
    *,
    url: str | None = None,
    version: str | None = None,
    server_json: dict | None = None,
) -> dict:
    """Fetch the MCP's repository (or `url`) at `ref`, store the version, enqueue its scan."""
    url = url or mcp["repo_url"]
    if not url:
        raise Unprocessable(
            "The MCP has no repo_url; give the repository's url.",
            details={"fields": {"url": "required"}},
        )
    async with reg.pool.acquire() as conn:
        hosts = (await reg.config(conn)).get("catalog_git_hosts") or []
    sources.check_git_url(url, hosts, reg.settings.catalog_allow_local_git)
    source = await sources.fetch_git(url, ref, reg.settings)
    visible = version or f"commit-{source.commit_sha[:7]}-{source.commit_date.isoformat()}"
    fields = {"source_kind": "git", "source_url": url, "git_ref": ref}
    if server_json is not None:
        fields["server_json"] = server_json
    return await store_version(reg, mcp, source, visible, fields, actor)


async def add_tarball_version(
    reg: Registry, mcp: Mapping, data: bytes, actor: str, version: str | None = None
) -> dict:
    """Check and normalise an uploaded tarball, store it as a version, enqueue its scan."""
    source = sources.normalise_tarball(data, reg.settings)
    return await store_version(
        reg, mcp, source, version or _tarball_name(source), {"source_kind": "tarball"}, actor
    )


async def add_server_json_version(
    reg: Registry,
    mcp: Mapping,
    doc: dict[str, Any],
    actor: str,
    version: str | None = None,
    ref: str | None = None,
) -> dict:
    """Take an official server.json: the MCP's metadata follows it.

    A git version when it names a repository, else a version whose tarball holds server.json."""
    repo = (
        (doc.get("repository") or {}).get("url")
        if isinstance(doc.get("repository"), dict)
        else None
    )
    changes: dict[str, Any] = {"server_json": doc}
    for key, column, size in (("description", "description", 4000), ("title", "title", 200),
                              ("websiteUrl", "homepage", 2000)):  # fmt: skip
        if isinstance(doc.get(key), str):
            changes[column] = doc[key][:size]
    if isinstance(repo, str):
        changes["repo_url"] = repo
    if isinstance(repo, str):
        # the repository is fetched before anything changes: a refused host changes nothing
        out = await add_git_version(
            reg, mcp, ref, actor, url=repo, version=version, server_json=doc
        )
    else:
        named = version or (doc.get("version") if isinstance(doc.get("version"), str) else None)
        source = sources.server_json_tarball(doc, reg.settings)
        out = await store_version(
            reg,
            mcp,
            source,
            named or _tarball_name(source),
            {"source_kind": "server_json", "server_json": doc},
            actor,
        )
    async with reg.pool.acquire() as conn, conn.transaction():
        await store.update_mcp(conn, mcp["id"], changes)
        payload = ev.McpChanged(str(mcp["id"]), mcp["name"], mcp["visibility"], sorted(changes))
        await reg.emit(
            conn, ev.MCP_UPDATED.event(payload, source=SCHEMA, actor=actor, org=mcp["org"])
        )
    return out


def _tarball_name(source: Source) -> str:
    """`tarball-<sha7>-<YYYY-MM-DD>` (today, UTC)."""
    return f"tarball-{source.sha256[:7]}-{datetime.now(UTC).date().isoformat()}"


async def store_version(
    reg: Registry,
    mcp: Mapping,
    source: Source,
    visible: str,
    fields: Mapping[str, Any],
    actor: str,
) -> dict:
    """Insert the version (PENDING) and its source; VERSION_CREATED and SCAN_REQUESTED."""
    if not re.fullmatch(VERSION, visible):
        raise Unprocessable(
            "The version name is not valid.",
            details={"fields": {"version": f"must match {VERSION}"}},
        )
    row = {
        **fields,
        "visible_version": visible,
        "commit_sha": source.commit_sha,
        "source_size": source.size,
        "file_count": source.file_count,
        "sha256": source.sha256,
        "status": "PENDING",
        "created_by": actor,
    }
    async with reg.pool.acquire() as conn, conn.transaction():
        if await store.version_exists(conn, mcp["id"], visible):
            raise _duplicate(mcp, visible)
        if mcp["org"] is not None:
            await plans.require_capacity(reg, conn, str(mcp["org"]), "scans")
        try:
            async with conn.transaction():
                version = await store.insert_version(conn, mcp["id"], row, source.tarball)
        except asyncpg.UniqueViolationError:
            raise _duplicate(mcp, visible) from None
        await _emit_created(reg, conn, mcp, version, actor)
    return version_out(mcp, version)


async def _emit_created(
    reg: Registry, conn: asyncpg.Connection, mcp: Mapping, version: Mapping, actor: str
) -> None:
    created = ev.VersionChanged(
        mcp_id=str(mcp["id"]),
        version_id=str(version["id"]),
        visible_version=version["visible_version"],
        status=version["status"],
    )
    org = mcp["org"]
    await reg.emit(conn, ev.VERSION_CREATED.event(created, source=SCHEMA, actor=actor, org=org))
    await scans.request_scan(reg, conn, mcp, version, actor, "created")


def _duplicate(mcp: Mapping, visible: str) -> Conflict:
    return Conflict(
        f"MCP {mcp['name']!r} already has version {visible!r}.",
        details={"mcp": str(mcp["id"]), "visible_version": visible},
    )
