"""SQL for the catalog: categories, tags, MCPs (with their tags) and versions with their sources.

A little over 300 lines: every statement on the catalog's own tables in one place, as
store/servers.py does for servers (snapshots are read here only for the latest score)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from libs.common.sql import Where, assignments

MCP_COLUMNS = (
    "m.id, m.name, m.org, m.visibility, m.title, m.description, m.repo_url, m.homepage,"
    " m.language, m.license, m.category_id, m.featured, m.server_json, m.created_by,"
    " m.created_at, m.updated_at,"
    " c.slug AS category_slug, c.name AS category_name,"
    " ARRAY(SELECT t.slug FROM registry.mcp_tags mt JOIN registry.tags t ON t.id = mt.tag_id"
    "  WHERE mt.mcp_id = m.id ORDER BY t.slug) AS tags,"
    " lv.id AS lv_id, lv.visible_version AS lv_visible_version, lv.status AS lv_status,"
    " lv.created_at AS lv_created_at,"
    " (SELECT s.global_score FROM registry.snapshots s WHERE s.version_id = lv.id"
    "  ORDER BY s.created_at DESC LIMIT 1) AS lv_global_score"
)
MCP_SOURCE = (
    "registry.mcps m LEFT JOIN registry.categories c ON c.id = m.category_id"
    " LEFT JOIN LATERAL (SELECT v.id, v.visible_version, v.status, v.created_at"
    "  FROM registry.mcp_versions v WHERE v.mcp_id = m.id"
    "  ORDER BY v.created_at DESC, v.id DESC LIMIT 1) lv ON true"
)
MCP_WRITABLE = {
    "name",
    "org",
    "visibility",
    "title",
    "description",
    "repo_url",
    "homepage",
    "language",
    "license",
    "category_id",
    "featured",
    "server_json",
    "created_by",
}
VERSION_COLUMNS = (
    "v.id, v.mcp_id, v.visible_version, v.source_kind, v.source_url, v.git_ref, v.commit_sha,"
    " v.source_size, v.file_count, v.sha256, v.status, v.status_error, v.server_json,"
    " v.created_by, v.created_at, v.updated_at"
)
VERSION_WRITABLE = {
    "visible_version",
    "source_kind",
    "source_url",
    "git_ref",
    "commit_sha",
    "source_size",
    "file_count",
    "sha256",
    "status",
    "server_json",
    "created_by",
}
TAXONOMIES = {"categories": ("slug", "name", "description"), "tags": ("slug", "name")}


def visible_to(where: Where, orgs: Sequence[str] | None) -> None:
    """Restrict to public MCPs and those of `orgs` (None: everything, for platform admins)."""
    if orgs is not None:
        where.add("(m.visibility = 'public' OR m.org = ANY({}::text[]))", list(orgs))


def filter_mcps(where: Where, filters: Mapping[str, Any], q: str | None) -> None:
    """The list filters: category (id or slug), tag, featured, language, org, visibility, q."""
    where.search(("m.name", "m.description", "coalesce(m.title, '')"), q)
    if (category := filters.get("category")) is not None:
        where.add("(c.slug = {} OR c.id::text = {})", category, category)
    if (tag := filters.get("tag")) is not None:
        where.add(
            "EXISTS (SELECT 1 FROM registry.mcp_tags mt JOIN registry.tags t ON t.id = mt.tag_id"
            " WHERE mt.mcp_id = m.id AND t.slug = {})",
            tag,
        )
    if (featured := filters.get("featured")) is not None:
        where.add("m.featured = {}", featured)
    if (language := filters.get("language")) is not None:
        where.add("lower(m.language) = lower({})", language)
    if (org := filters.get("org")) is not None:
        where.add("m.org = {}", org)
    if (visibility := filters.get("visibility")) is not None:
        where.add("m.visibility = {}", visibility)
    if (since := filters.get("updated_since")) is not None:
        where.add("m.updated_at > {}", since)


async def list_mcps(
    conn: asyncpg.Connection, where: Where, limit: int, offset: int, order: str = "m.name, m.id"
) -> tuple[list[asyncpg.Record], int]:
    """One page of MCPs matching `where` and the total."""
    total = await conn.fetchval(f"SELECT count(*) FROM {MCP_SOURCE}{where.sql}", *where.args)
    n = len(where.args)
    rows = await conn.fetch(
        f"SELECT {MCP_COLUMNS} FROM {MCP_SOURCE}{where.sql} ORDER BY {order}"
        f" LIMIT ${n + 1} OFFSET ${n + 2}",
        *where.args,
        limit,
        offset,
    )
    return rows, total


async def find_mcps(
    conn: asyncpg.Connection, ref: str, orgs: Sequence[str] | None
) -> list[asyncpg.Record]:
    """MCPs named `ref` (or with id `ref`) visible to `orgs`: the caller's orgs' first."""
    where = Where()
    try:
        where.add("m.id = {}", uuid.UUID(ref))
    except ValueError:
        where.add("m.name = {}", ref)
    visible_to(where, orgs)
    mine = where.arg(list(orgs or ()))
    return await conn.fetch(
        f"SELECT {MCP_COLUMNS} FROM {MCP_SOURCE}{where.sql}"
        f" ORDER BY (m.org = ANY({mine}::text[])) DESC NULLS LAST, (m.org IS NULL) DESC,"
        " m.created_at",
        *where.args,
    )


async def get_mcp(conn: asyncpg.Connection, mcp_id: uuid.UUID) -> asyncpg.Record | None:
    """One MCP by id, whoever may see it."""
    return await conn.fetchrow(f"SELECT {MCP_COLUMNS} FROM {MCP_SOURCE} WHERE m.id = $1", mcp_id)


async def name_taken(conn: asyncpg.Connection, org: str | None, name: str) -> bool:
    """True when the org (or the platform) already has an MCP named `name`."""
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM registry.mcps WHERE coalesce(org, '') = coalesce($1, '') AND name = $2",
            org,
            name,
        )
    )


async def insert_mcp(conn: asyncpg.Connection, fields: Mapping[str, Any]) -> uuid.UUID:
    """Insert an MCP; returns its id."""
    names = [k for k in fields if k in MCP_WRITABLE]
    mcp_id = uuid.uuid4()
    cols = ", ".join(["id", *names])
    marks = ", ".join(f"${i}" for i in range(1, len(names) + 2))
    await conn.execute(
        f"INSERT INTO registry.mcps ({cols}) VALUES ({marks})",
        mcp_id,
        *(fields[k] for k in names),
    )
    return mcp_id


async def update_mcp(
    conn: asyncpg.Connection, mcp_id: uuid.UUID, fields: Mapping[str, Any]
) -> None:
    """Change the given columns of an MCP (and updated_at)."""
    sets, args = assignments(fields, MCP_WRITABLE)
    await conn.execute(f"UPDATE registry.mcps SET {sets} WHERE id = $1", mcp_id, *args)


async def delete_mcp(conn: asyncpg.Connection, mcp_id: uuid.UUID) -> None:
    """Delete an MCP with its versions, sources and snapshots (cascades)."""
    await conn.execute("DELETE FROM registry.mcps WHERE id = $1", mcp_id)


async def set_mcp_tags(
    conn: asyncpg.Connection, mcp_id: uuid.UUID, tag_ids: Sequence[uuid.UUID]
) -> None:
    """Replace an MCP's tags."""
    await conn.execute("DELETE FROM registry.mcp_tags WHERE mcp_id = $1", mcp_id)
    await conn.executemany(
        "INSERT INTO registry.mcp_tags (mcp_id, tag_id) VALUES ($1, $2)",
        [(mcp_id, t) for t in tag_ids],
    )


async def list_taxonomy(conn: asyncpg.Connection, table: str) -> list[asyncpg.Record]:
    """Every category or tag, by slug."""
    cols = ", ".join(TAXONOMIES[table])
    return await conn.fetch(
        f"SELECT id, {cols}, created_at, updated_at FROM registry.{table} ORDER BY slug"
    )


async def get_taxonomy(conn: asyncpg.Connection, table: str, ref: str) -> asyncpg.Record | None:
    """One category or tag by id or slug."""
    cols = ", ".join(TAXONOMIES[table])
    return await conn.fetchrow(
        f"SELECT id, {cols}, created_at, updated_at FROM registry.{table}"
        " WHERE id::text = $1 OR slug = $1",
        ref,
    )


async def tags_by_slug(conn: asyncpg.Connection, slugs: Sequence[str]) -> list[asyncpg.Record]:
    """The tags with these slugs."""
    return await conn.fetch("SELECT id, slug FROM registry.tags WHERE slug = ANY($1)", list(slugs))


async def insert_taxonomy(
    conn: asyncpg.Connection, table: str, fields: Mapping[str, Any]
) -> uuid.UUID:
    """Insert a category or tag; returns its id."""
    names = [k for k in TAXONOMIES[table] if k in fields]
    row_id = uuid.uuid4()
    marks = ", ".join(f"${i}" for i in range(1, len(names) + 2))
    await conn.execute(
        f"INSERT INTO registry.{table} (id, {', '.join(names)}) VALUES ({marks})",
        row_id,
        *(fields[k] for k in names),
    )
    return row_id


async def update_taxonomy(
    conn: asyncpg.Connection, table: str, row_id: uuid.UUID, fields: Mapping[str, Any]
) -> None:
    """Change a category or tag."""
    sets, args = assignments(fields, TAXONOMIES[table])
    await conn.execute(f"UPDATE registry.{table} SET {sets} WHERE id = $1", row_id, *args)


async def delete_taxonomy(conn: asyncpg.Connection, table: str, row_id: uuid.UUID) -> None:
    """Delete a category (MCPs keep none) or tag (removed from MCPs)."""
    await conn.execute(f"DELETE FROM registry.{table} WHERE id = $1", row_id)


async def list_versions(
    conn: asyncpg.Connection, mcp_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    """One page of an MCP's versions, newest first, and the total."""
    total = await conn.fetchval(
        "SELECT count(*) FROM registry.mcp_versions WHERE mcp_id = $1", mcp_id
    )
    rows = await conn.fetch(
        f"SELECT {VERSION_COLUMNS} FROM registry.mcp_versions v WHERE v.mcp_id = $1"
        " ORDER BY v.created_at DESC, v.id DESC LIMIT $2 OFFSET $3",
        mcp_id,
        limit,
        offset,
    )
    return rows, total


async def get_version(
    conn: asyncpg.Connection, mcp_id: uuid.UUID, ref: str
) -> asyncpg.Record | None:
    """One version of an MCP by id or visible_version."""
    try:
        by_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        by_id = None
    return await conn.fetchrow(
        f"SELECT {VERSION_COLUMNS} FROM registry.mcp_versions v WHERE v.mcp_id = $1"
        " AND (v.id = $2 OR v.visible_version = $3)",
        mcp_id,
        by_id,
        ref,
    )


async def version_exists(conn: asyncpg.Connection, mcp_id: uuid.UUID, visible: str) -> bool:
    """True when the MCP already has a version named `visible`."""
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM registry.mcp_versions WHERE mcp_id = $1 AND visible_version = $2",
            mcp_id,
            visible,
        )
    )


async def insert_version(
    conn: asyncpg.Connection, mcp_id: uuid.UUID, fields: Mapping[str, Any], tarball: bytes
) -> asyncpg.Record:
    """Insert a version and its source bytes; returns the version row."""
    names = [k for k in fields if k in VERSION_WRITABLE]
    version_id = uuid.uuid4()
    cols = ", ".join(["id", "mcp_id", *names])
    marks = ", ".join(f"${i}" for i in range(1, len(names) + 3))
    await conn.execute(
        f"INSERT INTO registry.mcp_versions ({cols}) VALUES ({marks})",
        version_id,
        mcp_id,
        *(fields[k] for k in names),
    )
    await conn.execute(
        "INSERT INTO registry.version_sources (version_id, tarball) VALUES ($1, $2)",
        version_id,
        tarball,
    )
    await conn.execute("UPDATE registry.mcps SET updated_at = now() WHERE id = $1", mcp_id)
    return await conn.fetchrow(
        f"SELECT {VERSION_COLUMNS} FROM registry.mcp_versions v WHERE v.id = $1", version_id
    )


async def get_tarball(conn: asyncpg.Connection, version_id: uuid.UUID) -> bytes | None:
    """A version's source tarball."""
    return await conn.fetchval(
        "SELECT tarball FROM registry.version_sources WHERE version_id = $1", version_id
    )


async def latest_snapshot(conn: asyncpg.Connection, version_id: uuid.UUID) -> asyncpg.Record | None:
    """The newest snapshot summary of a version."""
    return await conn.fetchrow(
        "SELECT id, version_id, global_score, security_score, supply_chain_score, maturity_score,"
        " grade, toolchain_version, scoring_version, controls_catalog_version, total_findings,"
        " critical_findings, high_findings, medium_findings, low_findings, created_at"
        " FROM registry.snapshots WHERE version_id = $1 ORDER BY created_at DESC LIMIT 1",
        version_id,
    )


async def published_versions(
    conn: asyncpg.Connection, where: Where, limit: int, after: tuple[str, uuid.UUID] | None
) -> list[asyncpg.Record]:
    """Versions of the MCPs `where` selects, by (name, version id), after a (name, id) key.

    Names compare bytewise (C collation): a server's versions stay together whatever the
    database's collation. Each row carries the MCP's columns and `is_latest`; for the
    subregistry."""
    if after is not None:
        name, version_id = after
        where.add(
            '(m.name COLLATE "C" > {} OR (m.name = {} AND v.id > {}))', name, name, version_id
        )
    n = len(where.args)
    return await conn.fetch(
        f"SELECT {MCP_COLUMNS}, v.id AS version_id, v.visible_version, v.server_json AS"
        " version_server_json, v.status, v.created_at AS published_at,"
        " v.updated_at AS version_updated_at, (v.id = lv.id) AS is_latest"
        f" FROM {MCP_SOURCE} JOIN registry.mcp_versions v ON v.mcp_id = m.id{where.sql}"
        f' ORDER BY m.name COLLATE "C", v.id LIMIT ${n + 1}',
        *where.args,
        limit,
    )
