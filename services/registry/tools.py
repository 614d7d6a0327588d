"""Tool operations: views with diffs, approval, enable/disable (each with its event)."""

from __future__ import annotations

from typing import Any

import asyncpg

from libs.common import events as ev
from libs.common.errors import NotFound
from services.registry import review, servers, views
from services.registry.context import SCHEMA, Registry
from services.registry.store import servers as servers_store
from services.registry.store import tools as tools_store


async def get_or_404(conn: asyncpg.Connection, server: asyncpg.Record, name: str) -> Any:
    """A tool of the server, or 404."""
    tool = await tools_store.get_tool(conn, server["id"], name)
    if tool is None:
        raise NotFound(
            f"Tool {name!r} not found on {server['name']!r}.",
            details={"server": server["name"], "tool": name},
        )
    return tool


async def tool_view(conn: asyncpg.Connection, server_ref: str, name: str) -> dict[str, Any]:
    """The public view of one tool."""
    server = await servers.get_or_404(conn, server_ref)
    return views.tool_out(server, await get_or_404(conn, server, name))


async def _event(
    reg: Registry,
    conn: asyncpg.Connection,
    kind: ev.EventType,
    server: asyncpg.Record,
    tool: Any,
    actor: str | None,
) -> None:
    """Publish one tool event in the caller's transaction."""
    payload = ev.ToolChanged(
        server["name"],
        tool["name"],
        server["version"],
        tool["state"],
        views.routable(server, tool),
        tool["fingerprint"],
        list(tool["flags"]),
    )
    await reg.emit(conn, kind.event(payload, source=SCHEMA, actor=actor, org=server["org"]))


async def approve(
    reg: Registry, conn: asyncpg.Connection, server_ref: str, name: str, actor: str
) -> dict[str, Any]:
    """Approve a tool's current definition (it becomes routable)."""
    server = await servers.get_or_404(conn, server_ref)
    await servers_store.lock_server(conn, server["id"])
    tool = await get_or_404(conn, server, name)
    await tools_store.approve_tool(conn, server["id"], name, actor, review.definition(dict(tool)))
    server = await servers_store.update_server(conn, server["id"], {})
    tool = await get_or_404(conn, server, name)
    await _event(reg, conn, ev.TOOL_APPROVED, server, tool, actor)
    return views.tool_out(server, tool)


async def set_disabled(
    reg: Registry,
    conn: asyncpg.Connection,
    server: asyncpg.Record,
    disabled: list[str],
    actor: str,
) -> asyncpg.Record:
    """Replace the server's disabled-tool list; one enabled/disabled event per changed tool."""
    before = set(server["disabled_tools"])
    after = sorted(set(disabled))
    server = await servers_store.update_server(conn, server["id"], {"disabled_tools": after})
    known = {t["name"]: t for t in await tools_store.list_for_servers(conn, [server["id"]])}
    for name in sorted(before.symmetric_difference(after)):
        if name in known:
            kind = ev.TOOL_DISABLED if name in after else ev.TOOL_ENABLED
            await _event(reg, conn, kind, server, known[name], actor)
    return server
