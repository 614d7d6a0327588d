"""Who is asking, through which endpoint, in which protocol generation: one request's context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from libs.common.authn import Principal
from services.gateway.routing_table import ServerEntry
from services.gateway.upstreams.transport import Notify


@dataclass
class CallContext:
    """Who is asking, through which endpoint, in which protocol generation."""

    principal: Principal
    endpoint: str = "/mcp"
    team: str | None = None
    server: ServerEntry | None = None  # /mcp/servers/{path}: one server, names unprefixed
    modern: bool = False
    protocol: str = HANDSHAKE_PROTOCOL_VERSIONS[-1]
    session_id: str | None = None
    session_expires_at: float | None = None  # wall clock: when the legacy session's id expires
    client: str | None = None
    rpc_id: Any = None  # the JSON-RPC request's id (for its span)
    request_bytes: int = 0
    notify: Notify | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    ask: Any = None  # legacy sessions: send a server-to-client request, await the answer
    exposure: str = ""  # `?exposure=`: all | progressive | '' (settings decide)
    param_headers: tuple[tuple[str, str], ...] = ()  # 2026-07-28: the request's Mcp-Param-*
    capabilities: dict[str, Any] | None = None  # 2026-07-28: what the client declared
    tool_label: str = ""  # tools/call: the routed tool's public name, else `other` (metrics)
    error_type: str = ""  # `tool_error` when a tools/call result has isError (metrics)


def for_client(result: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
    """Adapt an upstream result to the client's generation."""
    if ctx.modern:
        if "resultType" not in result:
            result = {**result, "resultType": "complete"}
    elif "resultType" in result:
        result = {k: v for k, v in result.items() if k != "resultType"}
    return result
