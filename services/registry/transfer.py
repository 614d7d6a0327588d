"""Import and export formats: generic, Claude Desktop, VS Code and mcphub's mcp_settings.json."""

from __future__ import annotations

import re
from typing import Any

from libs.common.errors import Unprocessable

FORMATS = ("generic", "claude", "vscode", "mcphub")
GENERIC_FIELDS = (
    "name",
    "display_name",
    "description",
    "transport",
    "url",
    "headers",
    "command",
    "args",
    "env",
    "cwd",
    "path",
    "tags",
    "enabled",
    "owner_team",
    "timeout_s",
    "max_concurrency",
    "per_user",
    "health_interval_s",
    "license",
    "stars",
    "language",
    "repo_url",
)
VSCODE_TYPES = {
    "stdio": "stdio",
    "sse": "sse",
    "http": "streamable-http",
    "streamable-http": "streamable-http",
}


def slug(name: str) -> str:
    """A server name usable as our slug."""
    out = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")
    return out[:64].strip("-_") or "server"


def detect(doc: dict[str, Any]) -> str:
    """Which of the four formats a document is."""
    if isinstance(doc.get("servers"), list):
        return "generic"
    if (
        isinstance(doc.get("servers"), dict)
        or isinstance(doc.get("mcp.servers"), dict)
        or (isinstance(doc.get("mcp"), dict) and isinstance(doc["mcp"].get("servers"), dict))
    ):
        return "vscode"
    if isinstance(doc.get("mcpServers"), dict):
        mcphub_keys = {"users", "groups", "systemConfig", "bearerKeys"}
        entries = [e for e in doc["mcpServers"].values() if isinstance(e, dict)]
        if mcphub_keys & set(doc) or any(
            e.get("type") == "streamable-http" or "enabled" in e or "owner" in e for e in entries
        ):
            return "mcphub"
        return "claude"
    raise Unprocessable(
        "The document is not a known import format.",
        details={
            "fields": {
                "config": "expected servers (generic or VS Code), mcp.servers, or "
                "mcpServers (Claude Desktop, mcphub)"
            }
        },
    )


def _entry(name: str, entry: Any, kind: str | None) -> dict[str, Any]:
    """One mcpServers/servers entry to our fields."""
    if not isinstance(entry, dict):
        return {"name": name, "_error": "must be an object"}
    out: dict[str, Any] = {"name": slug(name)}
    if slug(name) != name:
        out["display_name"] = name
    transport = VSCODE_TYPES.get(kind or "") if kind else None
    if "command" in entry:
        out.update(transport="stdio", command=entry.get("command"), args=entry.get("args") or [])
        if entry.get("env"):
            out["env"] = entry["env"]
        if entry.get("cwd"):
            out["cwd"] = entry["cwd"]
    elif "url" in entry:
        out.update(transport=transport or "streamable-http", url=entry.get("url"))
        if transport == "stdio":
            out["transport"] = "streamable-http"
        if entry.get("headers"):
            out["headers"] = entry["headers"]
    else:
        out["_error"] = "needs a command or a url"
    for key in ("description", "enabled", "tags"):
        if key in entry:
            out[key] = entry[key]
    return out


def parse(doc: dict[str, Any], fmt: str) -> list[dict[str, Any]]:
    """Server field dicts from a document (validation happens afterwards, per server)."""
    if fmt == "generic":
        items = doc.get("servers")
        if not isinstance(items, list):
            raise Unprocessable(
                "Generic imports need a servers list.",
                details={"fields": {"config.servers": "must be a list"}},
            )
        return [
            {k: v for k, v in s.items() if k in GENERIC_FIELDS}
            if isinstance(s, dict)
            else {"name": str(i), "_error": "must be an object"}
            for i, s in enumerate(items)
        ]
    if fmt == "vscode":
        servers = (
            doc.get("servers") or doc.get("mcp.servers") or (doc.get("mcp") or {}).get("servers")
        )
        return [
            _entry(n, e, e.get("type", "stdio") if isinstance(e, dict) else None)
            for n, e in (servers or {}).items()
        ]
    entries = doc.get("mcpServers")
    if not isinstance(entries, dict):
        raise Unprocessable(
            "The document needs mcpServers.",
            details={"fields": {"config.mcpServers": "must be an object"}},
        )
    out = []
    for name, entry in entries.items():
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind == "http":
            kind = "streamable-http"
        out.append(_entry(name, entry, kind if fmt == "mcphub" or kind else None))
    return out


def export(servers: list[dict[str, Any]], fmt: str) -> dict[str, Any]:
    """Servers (public or revealed views) in a format."""
    if fmt == "generic":
        return {"version": 1, "servers": [{k: s.get(k) for k in GENERIC_FIELDS} for s in servers]}
    entries: dict[str, Any] = {}
    for s in servers:
        if s["transport"] in ("stdio",):
            entry: dict[str, Any] = {"command": s["command"], "args": s["args"]}
            if s["env"]:
                entry["env"] = s["env"]
            if fmt == "vscode":
                entry = {"type": "stdio", **entry}
        elif s["transport"] in ("sse", "streamable-http"):
            kind = (
                "http"
                if fmt in ("vscode", "claude") and s["transport"] != "sse"
                else s["transport"]
            )
            entry = {"type": kind, "url": s["url"]}
            if s["headers"]:
                entry["headers"] = s["headers"]
        else:
            continue  # the built-in code server is not portable
        if fmt == "mcphub":
            entry["type"] = s["transport"]
            entry["enabled"] = s["enabled"]
            if s.get("description"):
                entry["description"] = s["description"]
        entries[s["name"]] = entry
    if fmt == "vscode":
        return {"servers": entries}
    return {"mcpServers": entries}
