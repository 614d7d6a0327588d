"""Which tools a caller sees through an endpoint, and the one it names in a call."""

from __future__ import annotations

from typing import Any

from services.gateway.call_context import CallContext
from services.gateway.jsonrpc import FORBIDDEN, INVALID_PARAMS, RpcFault
from services.gateway.routing_table import RoutingTable, ToolEntry


def visible(table: RoutingTable, ctx: CallContext) -> list[tuple[str, ToolEntry]]:
    """(name as listed, tool) for the endpoint and principal."""
    if ctx.server is not None:
        server = ctx.server
        return [(t.name, t) for t in server.tools if table.permits(ctx.principal, t)]
    return [(t.public, t) for t in table.visible_tools(ctx.principal, ctx.team)]


def resolve(table: RoutingTable, name: Any, ctx: CallContext) -> ToolEntry:
    """The tool a client names; unknown and invisible tools are -32602, unexecutable -32003."""
    if not isinstance(name, str) or not name:
        raise RpcFault(INVALID_PARAMS, "params.name must be a non-empty string.")
    if ctx.server is not None:
        tool = next((t for t in ctx.server.tools if t.name == name), None)
    else:
        tool = table.by_public.get(name)
    server = table.servers.get(tool.server) if tool is not None else None
    if tool is None or server is None or not server.routable:
        raise RpcFault(INVALID_PARAMS, f"Unknown tool: {name}", {"tool": name})
    # the org policy is judged once here, and the grants once on the way that succeeds
    refusal = table.refusal(ctx.principal, server)
    if refusal is None and table.permits(ctx.principal, tool, ctx.team, enforce=False):
        return tool
    if table.permits(ctx.principal, tool, ctx.team, "read", enforce=False):
        if refusal is not None:  # usable but for an org policy: say which (not to strangers)
            data = {"tool": name, "result": refusal.result, "policy": refusal.matched_policy()}
            raise RpcFault(FORBIDDEN, refusal.reason or "An org policy refuses this server.", data)
        raise RpcFault(FORBIDDEN, f"No grant allows calling {name}.", {"tool": name})
    raise RpcFault(INVALID_PARAMS, f"Unknown tool: {name}", {"tool": name})
