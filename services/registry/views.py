"""Views of servers and tools: public JSON (secrets masked), and the shared RPC types.

The snapshot's and the hosted launch spec's views use the shared types of
libs/common/rpc_types.py (secrets decrypted)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import asyncpg

from libs.common.policy import Certification
from libs.common.rpc_types import HostedServer, ServerView, ToolUpstream, ToolView
from services.registry import review
from services.registry.crypto import MASK, Sealed, SecretBox

METADATA_FIELDS = ("license", "stars", "language", "repo_url", "is_python")


def _iso(value: Any) -> str | None:
    """RFC 3339 UTC text of a timestamp."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def secrets_by_kind(rows: Iterable[asyncpg.Record], box: SecretBox | None) -> dict[str, dict]:
    """{"header": {k: v}, "env": {k: v}}; values decrypted with `box`, else masked."""
    out: dict[str, dict[str, str]] = {"header": {}, "env": {}}
    for row in rows:
        if box is None:
            value = MASK
        else:
            sealed = Sealed(row["nonce"], row["ciphertext"], row["key_id"])
            value = box.open(sealed, secret_aad(row["server_id"], row["kind"], row["key"]))
        out[row["kind"]][row["key"]] = value
    return out


def secret_aad(server_id: Any, kind: str, key: str) -> str:
    """The associated data binding a sealed value to its row."""
    return f"server:{server_id}:{kind}:{key}"


def server_out(
    server: asyncpg.Record, secrets: Iterable[asyncpg.Record], full: bool = True
) -> dict[str, Any]:
    """The public view: header and env values masked.

    When not `full` (the caller reaches the server only through a share), the secrets' names and
    the orgs it is shared with are left out too."""
    masked = secrets_by_kind(secrets if full else (), None)
    meta = dict(server["metadata"] or {})
    return {
        "id": str(server["id"]),
        "name": server["name"],
        "path": server["path"],
        "display_name": server["display_name"] or server["name"],
        "description": server["description"],
        "transport": server["transport"],
        "url": server["url"],
        "headers": masked["header"],
        "command": server["command"],
        "args": server["args"],
        "env": masked["env"],
        "cwd": server["cwd"],
        "tags": list(server["tags"]),
        "enabled": server["enabled"],
        "org": server["org"],
        "owner_team": server["owner_team"],
        "shared_with": list(server["shared_with"] or []) if full else None,
        "timeout_s": server["timeout_s"],
        "max_concurrency": server["max_concurrency"],
        "per_user": server["per_user"],
        "trusted": server["trusted"],
        "health_interval_s": server["health_interval_s"],
        "disabled_tools": list(server["disabled_tools"]),
        **{f: meta.pop(f, None) for f in METADATA_FIELDS},
        "num_stars": server["metadata"].get("stars") if server["metadata"] else None,
        "proxy_pass_url": server["url"],
        "metadata": meta,
        "status": server["status"],
        "error": server["status_error"],
        "last_checked_at": _iso(server["last_checked_at"]),
        "latency_ms": server["latency_ms"],
        "tool_count": server["tool_count"],
        "discovered_at": _iso(server["discovered_at"]),
        "version": server["version"],
        "created_at": _iso(server["created_at"]),
        "updated_at": _iso(server["updated_at"]),
    }


def shares_out(server: asyncpg.Record, rows: Iterable[asyncpg.Record]) -> dict[str, Any]:
    """A server and the orgs it is shared with (docs/TENANCY.md)."""
    items = [
        {"org": r["org"], "created_by": r["created_by"], "created_at": _iso(r["created_at"])}
        for r in rows
    ]
    return {"server": server["name"], "server_id": str(server["id"]), "items": items}


def routable(server: asyncpg.Record, tool: asyncpg.Record) -> bool:
    """The gateway may route a call to this tool."""
    return (
        server["enabled"]
        and tool["state"] == "approved"
        and tool["name"] not in set(server["disabled_tools"])
    )


def tool_out(server: asyncpg.Record, tool: asyncpg.Record) -> dict[str, Any]:
    """The public view of a tool, with a diff when a changed version waits in quarantine."""
    out = {
        "id": str(tool["id"]),
        "server": server["name"],
        "name": tool["name"],
        "title": tool["title"],
        "description": tool["description"],
        "input_schema": tool["input_schema"],
        "output_schema": tool["output_schema"],
        "annotations": tool["annotations"],
        "execution": tool["execution"],
        "fingerprint": tool["fingerprint"],
        "state": tool["state"],
        "quarantined": tool["state"] == "quarantined",
        "disabled": tool["name"] in set(server["disabled_tools"]),
        "enabled": tool["name"] not in set(server["disabled_tools"]),
        "routable": routable(server, tool),
        "flags": tool["flags"],
        "approved_by": tool["approved_by"],
        "approved_at": _iso(tool["approved_at"]),
        "updated_at": _iso(tool["updated_at"]),
        "source_id": str(tool["source_id"]) if tool["source_id"] else None,
    }
    if tool["state"] == "quarantined":
        out["diff"] = review.diff(tool["approved"], dict(tool)) if tool["approved"] else None
        out["previous_fingerprint"] = (
            review.fingerprint(tool["approved"]) if tool["approved"] else None
        )
    return out


def hosted_server(
    server: asyncpg.Record, secrets: Iterable[asyncpg.Record], box: SecretBox
) -> HostedServer:
    """The view of rpc.registry.hosted: what the sandbox needs to launch one stdio server.

    Only a stdio server's env is decrypted; any other server answers its transport alone (the
    sandbox refuses it), never a URL or headers.
    """
    view = HostedServer(
        id=str(server["id"]),
        name=server["name"],
        org=server["org"],
        owner_team=server["owner_team"],  # who may reach it (docs/TENANCY.md)
        shared_with=list(server["shared_with"] or []),
        transport=server["transport"],
        enabled=server["enabled"],
    )
    if server["transport"] != "stdio":
        return view
    return dataclasses.replace(
        view,
        command=server["command"],
        args=server["args"],
        env=secrets_by_kind([r for r in secrets if r["kind"] == "env"], box)["env"],
        cwd=server["cwd"],
        timeout_s=server["timeout_s"],
        per_user=server["per_user"],
        version=server["version"],
    )


def snapshot_server(
    server: asyncpg.Record,
    tools: Iterable[asyncpg.Record],
    secrets: Iterable[asyncpg.Record],
    box: SecretBox,
    upstreams: dict[Any, ToolUpstream] | None = None,
    certification: Certification | None = None,
) -> ServerView:
    """The server view of rpc.registry.snapshot (docs/CONTRACTS.md), secrets decrypted.

    A tool imported from an external source carries `upstream` (its source's transport, url and
    headers): calls to it go there, not to the server's own url.
    """
    upstreams = upstreams or {}
    plain = secrets_by_kind(secrets, box)
    return ServerView(
        id=str(server["id"]),
        name=server["name"],
        path=server["path"],
        org=server["org"],
        owner_team=server["owner_team"],
        shared_with=list(server["shared_with"] or []),
        transport=server["transport"],
        url=server["url"],
        headers=plain["header"],
        command=server["command"],
        args=server["args"],
        env=plain["env"],
        cwd=server["cwd"],
        enabled=server["enabled"],
        status=server["status"],
        timeout_s=server["timeout_s"],
        max_concurrency=server["max_concurrency"],
        per_user=server["per_user"],
        trusted=server["trusted"],
        version=server["version"],
        tools=[
            ToolView(
                name=t["name"],
                title=t["title"],
                description=t["description"],
                input_schema=t["input_schema"],
                output_schema=t["output_schema"],
                annotations=t["annotations"],
                execution=t["execution"],
                fingerprint=t["fingerprint"],
                routable=routable(server, t),
                upstream=upstreams.get(t["source_id"]),
            )
            for t in tools
        ],
        resources=server["resources"],
        prompts=server["prompts"],
        certification=certification,
    )
