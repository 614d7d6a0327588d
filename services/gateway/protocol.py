"""The MCP methods the gateway answers, for both protocol generations."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable
from typing import Any

import structlog
from mcp_types import SERVER_INFO_META_KEY
from mcp_types.methods import CLIENT_REQUESTS
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from libs.common import tracing
from libs.common.bus import Bus
from services.gateway import client_meta, spans, team_limits, tool_access
from services.gateway.call_context import CallContext, for_client
from services.gateway.call_records import CallRecords
from services.gateway.clients.relay import Relay
from services.gateway.core import Core
from services.gateway.features import input_bridge, task_spec, tasks
from services.gateway.features.aggregate import AGGREGATED, Aggregate
from services.gateway.features.parking import Parking
from services.gateway.features.progressive import Progressive
from services.gateway.features.resource_watch import ResourceWatch
from services.gateway.jsonrpc import (
    FORBIDDEN,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    RpcFault,
    relayed,
)
from services.gateway.routing_table import RoutingTable, ServerEntry, ToolEntry
from services.gateway.settings import GatewaySettings
from services.gateway.team_limits import TeamLimits
from services.gateway.tool_calls import ToolCall, ToolCalls
from services.gateway.upstreams.pool import UpstreamPool

log = structlog.get_logger()

SERVER_INFO = {"name": "switchboard-gateway", "title": "Switchboard", "version": "0.1.0"}
UNAVAILABLE_META = "io.switchboard/unavailableServers"
# Requests of the handshake era that 2026-07-28 removed (initialize, ping, logging/setLevel,
# resources/subscribe, resources/unsubscribe): a request declaring 2026-07-28 gets -32601 (404)
REMOVED_METHODS = frozenset(
    m for m, v in CLIENT_REQUESTS if v in HANDSHAKE_PROTOCOL_VERSIONS
) - frozenset(m for m, v in CLIENT_REQUESTS if v in MODERN_PROTOCOL_VERSIONS)
PASSTHROUGH = frozenset(
    {
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
    }
)


def capabilities() -> dict[str, Any]:
    """What the gateway offers clients."""
    return {
        "tools": {"listChanged": True},
        "resources": {"listChanged": True, "subscribe": True},
        "prompts": {"listChanged": True},
        "completions": {},
        "logging": {},
    }


def negotiate(requested: Any) -> str:
    """The legacy protocol version to use: the client's when we speak it, else our newest."""
    if isinstance(requested, str) and requested in HANDSHAKE_PROTOCOL_VERSIONS:
        return requested
    return HANDSHAKE_PROTOCOL_VERSIONS[-1]


class Gateway:
    """Routes MCP requests to upstreams through the routing table."""

    def __init__(
        self,
        settings: GatewaySettings,
        table: RoutingTable,
        pool: UpstreamPool,
        bus: Bus | None,
        *,
        parking: Parking | None = None,
        relay: Relay | None = None,
        watch: ResourceWatch | None = None,
    ) -> None:
        self.settings = settings
        self.table = table
        self.pool = pool
        self.bus = bus
        # what the features receive: never this object
        self.core = Core(settings, table, pool, bus, self.call_tool, parking, relay)
        self.team_limits = TeamLimits(
            settings.team_max_concurrency,
            team_limits.parse_overrides(settings.team_concurrency_overrides),
        )
        self.progressive = Progressive(self.core)
        # resources, prompts, completion, logging on /mcp
        self.aggregate = Aggregate(self.core, watch)
        self.tasks = tasks.Tasks(self.core)  # task ids and the tasks/* methods
        self.calls = ToolCalls(self.core, self.tasks)
        self.records = CallRecords(settings, table, bus)  # gateway.tool.called
        self.handlers = {
            "ping": self.ping,
            "server/discover": self.discover,
            "tools/list": self.list_tools,
            "tools/call": self.call_tool,
        }

    def handle(self, method: str, params: dict[str, Any], ctx: CallContext) -> Awaitable[Any]:
        """Answer one request; raises RpcFault for every failure.

        Traced, in the request's MCP span; untraced, the answer's coroutine itself (no wrapper
        on the per-call path)."""
        if tracing.enabled:
            return spans.request(method, params, ctx, self._answer(method, params, ctx))
        return self._answer(method, params, ctx)

    async def _answer(self, method: str, params: dict[str, Any], ctx: CallContext) -> Any:
        """The result of one request, by its method."""
        handler = self.handlers.get(method)
        if handler is not None:
            result = await handler(params, ctx)
            if ctx.modern and "resultType" not in result:
                result["resultType"] = "complete"
            return result
        if method in PASSTHROUGH and ctx.server is not None:
            return await self.forward(ctx.server, method, params, ctx)
        if method in task_spec.METHODS:
            return for_client(await self.tasks.handle(method, params, ctx), ctx)
        if method in AGGREGATED:
            return for_client(await self.aggregate.handle(method, params, ctx), ctx)
        if method == "initialize":
            raise RpcFault(-32600, "initialize is only valid as the first request of a session.")
        raise RpcFault(METHOD_NOT_FOUND, f"Method not found: {method}", {"method": method})

    # ---- lifecycle -------------------------------------------------------------------------

    async def ping(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """An empty result."""
        return {}

    def initialize_result(self, protocol: str) -> dict[str, Any]:
        """The legacy handshake's result."""
        caps = capabilities()
        if protocol == task_spec.SESSION_VERSION:  # tasks are in this revision's core only
            caps["tasks"] = task_spec.SESSION_CAPABILITY
        return {
            "protocolVersion": protocol,
            "capabilities": caps,
            "serverInfo": SERVER_INFO,
            "instructions": "Tools of every MCP server you may use, named {server}__{tool}.",
        }

    async def discover(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """server/discover (2026-07-28): versions and capabilities."""
        return {
            "supportedVersions": [*MODERN_PROTOCOL_VERSIONS, *HANDSHAKE_PROTOCOL_VERSIONS],
            "capabilities": {**capabilities(), "extensions": {task_spec.EXTENSION: {}}},
            "serverInfo": SERVER_INFO,
            "ttlMs": self.settings.list_ttl_ms,
            "cacheScope": "public",
            "_meta": {SERVER_INFO_META_KEY: SERVER_INFO},  # where 2026-07-28 clients look for it
        }

    # ---- tools -----------------------------------------------------------------------------

    async def list_tools(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """tools/list: permitted tools in a deterministic order, paged by cursor."""
        if self.progressive.enabled(ctx):
            return self.progressive.list_result(ctx)
        visible = tool_access.visible(self.table, ctx)
        offset = _decode_cursor(params.get("cursor"))
        size = self.settings.list_page_size
        page = visible[offset : offset + size]
        breakers = self.pool.breakers
        shut = {
            t.public
            for _, t in visible
            if (br := breakers.get(t.source.key if t.source else t.server)) and br.state == "open"
        }
        missing = sorted({t.server for _, t in visible if t.public in shut})
        tools = [t.as_listed(name) for name, t in page if t.public not in shut]
        result: dict[str, Any] = {"tools": tools}
        if offset + size < len(visible):
            result["nextCursor"] = _encode_cursor(offset + size)
        if missing:
            result["_meta"] = {UNAVAILABLE_META: missing}
        if ctx.modern:
            result["ttlMs"] = self.settings.list_ttl_ms
            result["cacheScope"] = "private"
        return result

    async def call_tool(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """tools/call: resolve → features → forward → record."""
        if self.progressive.handles(params, ctx):  # a meta-tool: it calls back for the real one
            return await self.progressive.call(params, ctx)
        call = ToolCall(params, ctx)
        try:
            call.tool = tool_access.resolve(self.table, params.get("name"), ctx)
            route, forwarded = await self.calls.prepare(call)
            # a team's calls beyond its cap are refused here, before any upstream work
            with self.team_limits.slot(self._team(call.tool, ctx)):
                result = await self.calls.forward(call, route, forwarded)
            return self.calls.finish(call, result)
        except RpcFault as fault:
            call.refused(fault)
            raise
        except asyncio.CancelledError:
            call.cancelled()
            raise
        finally:
            await self.records.file(call)

    def _team(self, tool: ToolEntry, ctx: CallContext) -> str | None:
        """The team a call counts against for concurrency caps (None when no cap is set)."""
        if not self.team_limits.active:
            return None
        server = self.table.servers[tool.server]
        return ctx.team or team_limits.team_of(ctx.principal, server.ref, tool.name)

    # ---- passthrough -----------------------------------------------------------------------

    async def forward(
        self, server: ServerEntry, method: str, params: dict[str, Any], ctx: CallContext
    ) -> Any:
        """Forward a request to one server (the /mcp/servers/{path} endpoint)."""
        if not self.table.may_read_server(ctx.principal, server, whole=True):
            # a grant narrowed to tools gives those tools, not resources, prompts or completion
            raise RpcFault(FORBIDDEN, f"No grant allows reading all of {server.name!r}.")
        forwarded = dict(params)
        if meta := client_meta.upstream_meta(forwarded.pop("_meta", None), ctx.capabilities):
            forwarded["_meta"] = meta
        if "requestState" in forwarded and self.core.parked_retry(forwarded, ctx):
            key = input_bridge.principal_key(ctx)
            reply, _ = await self.core.parking.resume(forwarded, key)  # type: ignore[union-attr]
        else:
            relaying = input_bridge.relaying(self.core, server, ctx)
            reply, _ = await self.pool.request(server, method, forwarded, on_notify=relaying)
        if "error" in reply:
            raise relayed(reply["error"])
        return for_client(reply.get("result") or {}, ctx)


def _encode_cursor(offset: int) -> str:
    """An opaque cursor."""
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _decode_cursor(cursor: Any) -> int:
    """The offset in a cursor; a bad cursor is -32602."""
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(str(cursor).encode()).decode()
        if not text.startswith("o:"):
            raise ValueError
        offset = int(text[2:])
        if offset < 0:
            raise ValueError
        return offset
    except (ValueError, UnicodeDecodeError):
        raise RpcFault(INVALID_PARAMS, "Invalid cursor.", {"cursor": str(cursor)[:100]}) from None
