"""MCP operations (create, change, delete, curate) with their events, and their public views."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg

from libs.common import events as ev
from libs.common.errors import Conflict, Forbidden, Unprocessable
from services.registry import plans
from services.registry.context import SCHEMA, Registry
from services.registry.store import catalog as store

EVENT_FIELDS = ("name", "visibility", "title", "description", "repo_url", "homepage",
                "language", "license", "category", "tags", "featured", "server_json")  # fmt: skip


def plain(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record as a dict with its UUIDs as strings (asyncpg's UUID is not orjson's)."""
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in row.items()}


def latest_out(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The seed's `latest_version` summary from an MCP row."""
    if row["lv_id"] is None:
        return None
    return {
        "id": str(row["lv_id"]),
        "visible_version": row["lv_visible_version"],
        "status": row["lv_status"],
        "global_score": row["lv_global_score"],
    }


def mcp_out(row: Mapping[str, Any]) -> dict[str, Any]:
    """An MCP as lists show it."""
    category = (
        {"id": str(row["category_id"]), "slug": row["category_slug"], "name": row["category_name"]}
        if row["category_id"]
        else None
    )
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "title": row["title"],
        "description": row["description"],
        "repo_url": row["repo_url"],
        "homepage": row["homepage"],
        "language": row["language"],
        "license": row["license"],
        "visibility": row["visibility"],
        "org": row["org"],
        "featured": row["featured"],
        "category": category,
        "tags": list(row["tags"]),
        "latest_version": latest_out(row),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def mcp_detail(conn: asyncpg.Connection, row: Mapping[str, Any]) -> dict[str, Any]:
    """An MCP with its server.json and its latest version's snapshot summary."""
    out = mcp_out(row)
    out["server_json"] = row["server_json"]
    if out["latest_version"] is not None:
        snapshot = await store.latest_snapshot(conn, row["lv_id"])
        out["latest_version"]["snapshot"] = plain(snapshot) if snapshot else None
    return out


async def _category_id(conn: asyncpg.Connection, ref: str | None) -> uuid.UUID | None:
    if ref is None:
        return None
    row = await store.get_taxonomy(conn, "categories", ref)
    if row is None:
        raise Unprocessable(
            f"Category {ref!r} does not exist.", details={"fields": {"category": "unknown"}}
        )
    return row["id"]


async def _tag_ids(conn: asyncpg.Connection, slugs: list[str]) -> list[uuid.UUID]:
    rows = await store.tags_by_slug(conn, slugs)
    missing = sorted(set(slugs) - {r["slug"] for r in rows})
    if missing:
        raise Unprocessable(
            f"Unknown tags: {', '.join(missing)}.", details={"fields": {"tags": "unknown"}}
        )
    return [r["id"] for r in rows]


async def _columns(
    conn: asyncpg.Connection, body: Mapping[str, Any], is_admin: bool
) -> dict[str, Any]:
    """Table columns from a validated body's set fields."""
    fields = dict(body)
    if fields.get("visibility") == "public" and not is_admin:
        raise Forbidden("Making an MCP public needs a platform admin.")
    if "featured" in fields and not is_admin:
        raise Forbidden("Featuring an MCP needs a platform admin.")
    fields.pop("tags", None)
    fields.pop("org", None)
    if "category" in fields:
        fields["category_id"] = await _category_id(conn, fields.pop("category"))
    return fields


async def create(
    reg: Registry,
    conn: asyncpg.Connection,
    body: Mapping[str, Any],
    org: str | None,
    actor: str,
    is_admin: bool,
) -> asyncpg.Record:
    """Insert an MCP (private unless said otherwise) with its tags; MCP_CREATED."""
    fields = await _columns(conn, body, is_admin)
    fields.setdefault("visibility", "private")
    if org is not None and fields["visibility"] == "private":
        await plans.require_capacity(reg, conn, org, "mcps")
    if await store.name_taken(conn, org, fields["name"]):
        raise Conflict(
            f"An MCP named {fields['name']!r} already exists.", details={"name": fields["name"]}
        )
    mcp_id = await store.insert_mcp(conn, {**fields, "org": org, "created_by": actor})
    if body.get("tags"):
        await store.set_mcp_tags(conn, mcp_id, await _tag_ids(conn, body["tags"]))
    row = await store.get_mcp(conn, mcp_id)
    await _emit(reg, conn, ev.MCP_CREATED, row, list(body), actor)
    return row


async def update(
    reg: Registry,
    conn: asyncpg.Connection,
    mcp: Mapping[str, Any],
    body: Mapping[str, Any],
    actor: str,
    is_admin: bool,
) -> asyncpg.Record:
    """Change an MCP's given fields (tags replaced when given); MCP_UPDATED."""
    fields = await _columns(conn, body, is_admin)
    name = fields.get("name")
    if name and name != mcp["name"] and await store.name_taken(conn, mcp["org"], name):
        raise Conflict(f"An MCP named {name!r} already exists.", details={"name": name})
    await store.update_mcp(conn, mcp["id"], fields)
    if body.get("tags") is not None:
        await store.set_mcp_tags(conn, mcp["id"], await _tag_ids(conn, body["tags"]))
    row = await store.get_mcp(conn, mcp["id"])
    await _emit(reg, conn, ev.MCP_UPDATED, row, list(body), actor)
    return row


async def delete(
    reg: Registry, conn: asyncpg.Connection, mcp: Mapping[str, Any], actor: str
) -> None:
    """Delete an MCP with its versions; MCP_DELETED."""
    await store.delete_mcp(conn, mcp["id"])
    await _emit(reg, conn, ev.MCP_DELETED, mcp, [], actor)


async def _emit(
    reg: Registry,
    conn: asyncpg.Connection,
    kind: ev.EventType,
    row: Mapping[str, Any],
    changed: list[str],
    actor: str,
) -> None:
    payload = ev.McpChanged(
        mcp_id=str(row["id"]),
        name=row["name"],
        visibility=row["visibility"],
        changed=sorted(c for c in changed if c in EVENT_FIELDS),
    )
    await reg.emit(conn, kind.event(payload, source=SCHEMA, actor=actor, org=row["org"]))
