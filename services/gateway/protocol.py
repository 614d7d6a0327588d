"""The MCP methods the gateway answers, for both protocol generations."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import orjson
import structlog
from mcp_types import SERVER_INFO_META_KEY
from mcp_types.methods import CLIENT_REQUESTS
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from libs.common.authn import Principal
from libs.common.bus import Bus
from libs.common.events import TOOL_CALLED, ToolCalled
from libs.common.redaction import redact
from services.gateway import client_meta, metrics, param_headers, team_limits, tool_access
from services.gateway.call_context import CallContext, for_client
from services.gateway.clients.relay import Relay
from services.gateway.core import Core
from services.gateway.features import input_bridge, tasks
from services.gateway.features.aggregate import AGGREGATED, Aggregate
from services.gateway.features.parking import Parking
from services.gateway.features.progressive import META_NAMES, Progressive
from services.gateway.features.resource_watch import ResourceWatch
from services.gateway.jsonrpc import (
    AUDIT_UNAVAILABLE,
    FORBIDDEN,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    RESULT_TOO_LARGE,
    RpcFault,
    relayed,
)
from services.gateway.routing_table import RoutingTable, ServerEntry, ToolEntry
from services.gateway.settings import GatewaySettings
from services.gateway.team_limits import TeamLimits
from services.gateway.upstreams.pool import UpstreamPool

log = structlog.get_logger()

SERVER_INFO = {"name": "switchboard-gateway", "title": "Switchboard", "version": "0.1.0"}
UNAVAILABLE_META = "io.switchboard/unavailableServers"
AUDIT_ATTEMPT_S = 2.0  # one publish's wait for its acknowledgement, within the audit deadline
MRTR_KEYS = ("inputResponses", "requestState")
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
        self._background: set[asyncio.Task] = set()
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
        self.handlers = {
            "ping": self.ping,
            "server/discover": self.discover,
            "tools/list": self.list_tools,
            "tools/call": self.call_tool,
        }

    async def handle(self, method: str, params: dict[str, Any], ctx: CallContext) -> Any:
        """Answer one request; raises RpcFault for every failure."""
        handler = self.handlers.get(method)
        if handler is not None:
            result = await handler(params, ctx)
            if ctx.modern and "resultType" not in result:
                result["resultType"] = "complete"
            return result
        if method in PASSTHROUGH and ctx.server is not None:
            return await self.forward(ctx.server, method, params, ctx)
        if method in tasks.METHODS:
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
        if protocol == tasks.SESSION_VERSION:  # tasks are in this revision's core only
            caps["tasks"] = tasks.SESSION_CAPABILITY
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
            "capabilities": {**capabilities(), "extensions": {tasks.EXTENSION: {}}},
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
        """tools/call: check, forward over the pooled session, audit."""
        if params.get("name") in META_NAMES and self.progressive.handles(params, ctx):
            return await self.progressive.call(params, ctx)
        t0 = time.perf_counter()
        name = params.get("name")
        tool: ToolEntry | None = None
        upstream_ms: float | None = None
        status, code, message, size = "ok", None, None, 0
        answered = False  # the call has a result for the client (which needs its record)
        try:
            tool = tool_access.resolve(self.table, name, ctx)
            arguments = params.get("arguments")
            if arguments is not None and not isinstance(arguments, dict):
                raise RpcFault(INVALID_PARAMS, "params.arguments must be an object.")
            if ctx.modern:
                param_headers.check(tool, arguments or {}, ctx.param_headers)
            forwarded: dict[str, Any] = {"name": tool.name, "arguments": arguments or {}}
            if meta := client_meta.upstream_meta(params.get("_meta"), ctx.capabilities):
                forwarded["_meta"] = meta
            for key in MRTR_KEYS:  # a multi-round-trip retry (2026-07-28): answers and state
                if key in params:
                    forwarded[key] = params[key]
            task_settings = tasks.declared(params) if ctx.modern else None
            if task_settings is not None:  # the Tasks extension, declared for this request
                tasks.declare(forwarded, task_settings)
            route = tool.source or self.table.servers[tool.server]  # an imported tool: its source
            if "task" in params and tasks.in_session(ctx):  # 2025-11-25: task-augmented
                await self.tasks.augment(route, forwarded, params["task"], tool, str(name))
            # a team's calls beyond its cap are refused here, before any upstream work
            with self.team_limits.slot(self._team(tool, ctx)):
                if "requestState" in forwarded and self.core.parked_retry(forwarded, ctx):
                    reply, upstream_ms = await self.core.parking.resume(  # type: ignore[union-attr]
                        forwarded, input_bridge.principal_key(ctx)
                    )
                else:
                    reply, upstream_ms = await self.pool.request(
                        route,
                        "tools/call",
                        forwarded,
                        on_notify=input_bridge.relaying(self.core, route, ctx),
                        retry=(tool.read_only or tool.idempotent) and "task" not in forwarded,
                        principal=ctx.principal.to_dict() if _sandboxed(route) else None,
                        headers=param_headers.for_upstream(tool, forwarded["arguments"]),
                    )
                if "error" in reply:
                    raise relayed(reply["error"])
                result = reply.get("result") or {}
                if result.get("resultType") == "task" or "task" in forwarded:
                    result = await self.tasks.created(result, route, forwarded, ctx)
                if not ctx.modern and result.get("resultType") == "input_required":
                    result = await input_bridge.resolve(
                        self.core,
                        route,
                        "tools/call",
                        forwarded,
                        result,
                        ctx,
                        param_headers.for_upstream(tool, forwarded["arguments"]),
                    )
            size = len(orjson.dumps(result))
            if size > self.settings.max_result_bytes:
                raise RpcFault(
                    RESULT_TOO_LARGE,
                    f"The tool result is {size} bytes; the limit is "
                    f"{self.settings.max_result_bytes}.",
                    {"size": size, "limit": self.settings.max_result_bytes},
                )
            if result.get("isError"):
                status = "error"
            answered = True
            return for_client(result, ctx)
        except RpcFault as fault:
            status = "denied" if fault.code == FORBIDDEN or tool is None else "error"
            code, message = fault.code, fault.message
            raise
        except asyncio.CancelledError:
            status, code, message = "error", -32800, "cancelled by the client"
            raise
        finally:
            elapsed = (time.perf_counter() - t0) * 1000
            server = tool.server if tool is not None else ctx.server.name if ctx.server else ""
            tool_name = tool.name if tool is not None else str(name or "")
            org = self.record_org(server, ctx.principal)
            record = ToolCalled(
                server=server,
                tool=tool_name,
                status=status,
                principal_kind=ctx.principal.kind,
                principal_id=ctx.principal.id,
                principal_name=ctx.principal.name,
                credential_id=ctx.principal.credential_id,
                org=org,
                caller_org=ctx.principal.org,
                team=ctx.team,
                endpoint=ctx.endpoint,
                error_code=code,
                error_message=message,
                latency_ms=round(elapsed, 3),
                upstream_ms=round(upstream_ms, 3) if upstream_ms is not None else None,
                request_bytes=ctx.request_bytes,
                response_bytes=size,
                arguments=redact(_arguments(params), self.arguments_policy),
                session_id=ctx.session_id,
                client=ctx.client,
                tool_fingerprint=(tool.fingerprint or None) if tool is not None else None,
            )
            self._observe(record, elapsed, upstream_ms)
            if not await self.record(record, ctx.principal, org) and answered:
                raise RpcFault(
                    AUDIT_UNAVAILABLE,
                    "The tool ran, but its audit record could not be stored, so its result is "
                    "withheld; the platform's event stream (NATS) is unavailable.",
                    {"retry_may_repeat_the_call": True},
                )

    @property
    def arguments_policy(self) -> str:
        """How much of a call's arguments its record carries: the registry's `audit_arguments`."""
        return str(self.table.settings.get("audit_arguments") or "keys")

    def _team(self, tool: ToolEntry, ctx: CallContext) -> str | None:
        """The team a call counts against for concurrency caps (None when no cap is set)."""
        if not self.team_limits.active:
            return None
        server = self.table.servers[tool.server]
        return ctx.team or team_limits.team_of(ctx.principal, server.ref, tool.name)

    def _observe(self, record: ToolCalled, elapsed_ms: float, upstream_ms: float | None) -> None:
        """Tool-call metrics: count, upstream time and the time the gateway added."""
        known = record.server in self.table.servers
        metrics.tool_calls(
            record.server if known else "<unknown>",
            record.tool if known else "<unknown>",
            record.status,
        ).inc()
        if upstream_ms is not None:
            metrics.upstream_duration(record.server, "tools/call").observe(upstream_ms / 1000)
            metrics.CALL_OVERHEAD.observe(max(0.0, elapsed_ms - upstream_ms) / 1000)

    def record_org(self, server: str, principal: Principal) -> str | None:
        """The org a call is filed under: its server's (docs/TENANCY.md); a platform-owned
        server's calls (or a call to no known server) under the caller's."""
        entry = self.table.servers.get(server)
        return entry.org if entry is not None and entry.org else principal.org

    async def record(
        self, record: ToolCalled, principal: Principal, org: str | None = None
    ) -> bool:
        """Publish gateway.tool.called under `org` (default: the caller's): acknowledged before
        the response, unless async; False when it could not be stored in time."""
        if self.bus is None:
            return True
        event = TOOL_CALLED.event(  # vars(): a shallow dict, no dataclasses.asdict deep copy
            vars(record),  # type: ignore[arg-type]
            source="gateway",
            actor=principal.name or principal.id,
            org=org or principal.org,
        )
        if self.settings.audit_async:
            task = asyncio.get_running_loop().create_task(self._publish(event))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            return True
        return await self._publish(event)

    async def _publish(self, event: Any) -> bool:
        """Publish one audit event until JetStream acknowledges it or GATEWAY_AUDIT_DEADLINE_S
        passes. Every attempt carries the event's id, so a publish that did arrive before its
        acknowledgement was lost is stored once (JetStream deduplicates; audit too)."""
        assert self.bus is not None
        t0 = time.perf_counter()
        deadline = t0 + self.settings.audit_deadline_s
        attempt = 0
        while True:
            left = deadline - time.perf_counter()
            try:
                await self.bus.publish(event, timeout=max(min(AUDIT_ATTEMPT_S, left), 0.01))
                metrics.AUDIT_PUBLISH.observe(time.perf_counter() - t0)
                if attempt:
                    log.info("tool_call_record_published", event_id=event.id, attempts=attempt + 1)
                return True
            except Exception as exc:
                attempt += 1
                if deadline - time.perf_counter() <= 0:
                    log.error("tool_call_record_not_published", error=str(exc), event_id=event.id)
                    metrics.AUDIT_PUBLISH.observe(time.perf_counter() - t0)
                    return False
                log.warning("tool_call_record_retried", error=str(exc) or type(exc).__name__)
                await asyncio.sleep(min(0.1 * 2**attempt, 1.0, max(left, 0)))

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


def _arguments(params: dict[str, Any]) -> dict[str, Any] | None:
    """The call's arguments when they are an object."""
    args = params.get("arguments")
    return args if isinstance(args, dict) else None


def _sandboxed(route: ServerEntry) -> bool:
    """True for tools served through the sandbox (they get the principal)."""
    return route.transport in ("stdio", "code")


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
