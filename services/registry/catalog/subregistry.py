"""The official MCP registry's read API (v0.1) served from the catalog: its response shapes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from libs.common.errors import Unprocessable

OFFICIAL = "io.modelcontextprotocol.registry/official"


def server_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """The server.json of one version: as given, else made from the MCP's metadata."""
    given = row["version_server_json"] or row["server_json"]
    doc: dict[str, Any] = dict(given) if isinstance(given, dict) else {}
    doc.setdefault(
        "$schema", "https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json"
    )
    doc["name"] = row["name"]
    doc.setdefault("description", row["description"] or "")
    if row["title"]:
        doc.setdefault("title", row["title"])
    if row["repo_url"]:
        doc.setdefault("repository", {"url": row["repo_url"], "source": _source(row["repo_url"])})
    if row["homepage"]:
        doc.setdefault("websiteUrl", row["homepage"])
    doc["version"] = version_name(row)
    return doc


def version_name(row: Mapping[str, Any]) -> str:
    """The version string clients see: server.json's own when it was the source, else ours."""
    given = row["version_server_json"]
    if isinstance(given, dict) and isinstance(given.get("version"), str):
        return given["version"]
    return row["visible_version"]


def _source(url: str) -> str:
    host = url.split("://", 1)[-1].split("/", 1)[0].lower()
    return host.split(".")[0] if "." in host else host


def server_response(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ServerResponse: the server.json and the registry's `_meta`."""
    return {
        "server": server_json(row),
        "_meta": {
            OFFICIAL: {
                "status": "active",
                "publishedAt": _iso(row["published_at"]),
                "updatedAt": _iso(row["version_updated_at"]),
                "isLatest": bool(row["is_latest"]),
            }
        },
    }


def server_list(rows: list[Mapping[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    """A ServerListResponse with `metadata.nextCursor` and `count`."""
    metadata: dict[str, Any] = {"count": len(rows)}
    if next_cursor:
        metadata["nextCursor"] = next_cursor
    return {"servers": [server_response(r) for r in rows], "metadata": metadata}


def cursor_of(row: Mapping[str, Any]) -> str:
    """The opaque cursor after `row` (its order key)."""
    return f"{row['name']}:{row['version_id']}"


def parse_cursor(cursor: str | None) -> tuple[str, uuid.UUID] | None:
    """The (name, version id) key a cursor from `cursor_of` holds; 422 when it is not one."""
    if not cursor:
        return None
    name, _, version_id = cursor.rpartition(":")
    try:
        return name, uuid.UUID(version_id)
    except ValueError:
        raise Unprocessable(
            "Invalid list parameters.", details={"fields": {"cursor": "not a cursor of this list"}}
        ) from None


def _iso(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")
