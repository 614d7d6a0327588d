"""Tool-call records: `gateway.tool.called` for every call, acknowledged before its answer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from libs.common.authn import Principal
from libs.common.bus import Bus
from libs.common.events import TOOL_CALLED
from libs.common.redaction import redact
from services.gateway import metrics
from services.gateway.jsonrpc import AUDIT_UNAVAILABLE, RpcFault
from services.gateway.routing_table import RoutingTable
from services.gateway.settings import GatewaySettings
from services.gateway.tool_calls import ToolCall

log = structlog.get_logger()

AUDIT_ATTEMPT_S = 2.0  # one publish's wait for its acknowledgement, within the audit deadline


class CallRecords:
    """Builds, counts and publishes the record of each tools/call."""

    def __init__(self, settings: GatewaySettings, table: RoutingTable, bus: Bus | None) -> None:
        self.settings = settings
        self.table = table
        self.bus = bus
        self._background: set[asyncio.Task] = set()

    async def file(self, call: ToolCall) -> None:
        """Count and publish the record of a finished call.

        A call with a result for the client whose record could not be stored is -32010 instead
        (its result is withheld).
        """
        elapsed = (time.perf_counter() - call.t0) * 1000
        record = self.record_of(call, elapsed)
        self._observe(record, elapsed, call.upstream_ms)
        # the request's mcp.server.operation.duration labels: a routed tool's name, tool_error
        call.ctx.tool_label = call.tool.public if call.tool is not None else metrics.OTHER
        if call.status == "error" and call.code is None:
            call.ctx.error_type = metrics.TOOL_ERROR
        if not await self.record(record, call.ctx.principal, record["org"]) and call.answered:
            raise RpcFault(
                AUDIT_UNAVAILABLE,
                "The tool ran, but its audit record could not be stored, so its result is "
                "withheld; the platform's event stream (NATS) is unavailable.",
                {"retry_may_repeat_the_call": True},
            )

    def record_of(self, call: ToolCall, elapsed_ms: float) -> dict[str, Any]:
        """The record of a call that took `elapsed_ms`: `ToolCalled`'s fields, as its event carries.

        A dict, as the event's payload is one: building the frozen dataclass first took more
        than everything else here (tests hold its keys to ToolCalled's fields)."""
        tool, ctx, upstream_ms = call.tool, call.ctx, call.upstream_ms
        principal = ctx.principal
        server = tool.server if tool is not None else ctx.server.name if ctx.server else ""
        return {
            "server": server,
            "tool": tool.name if tool is not None else str(call.params.get("name") or ""),
            "status": call.status,
            "principal_kind": principal.kind,
            "principal_id": principal.id,
            "principal_name": principal.name,
            "credential_id": principal.credential_id,
            "org": self.record_org(server, principal),
            "team": ctx.team,
            "endpoint": ctx.endpoint,
            "method": "tools/call",
            "error_code": call.code,
            "error_message": call.message,
            "latency_ms": round(elapsed_ms, 3),
            "upstream_ms": round(upstream_ms, 3) if upstream_ms is not None else None,
            "request_bytes": ctx.request_bytes,
            "response_bytes": call.size,
            "arguments": redact(_arguments(call.params), self.arguments_policy),
            "session_id": ctx.session_id,
            "client": ctx.client,
            "caller_org": principal.org,
            "tool_fingerprint": (tool.fingerprint or None) if tool is not None else None,
        }

    @property
    def arguments_policy(self) -> str:
        """How much of a call's arguments its record carries: the registry's `audit_arguments`."""
        return str(self.table.settings.get("audit_arguments") or "keys")

    def _observe(
        self, record: dict[str, Any], elapsed_ms: float, upstream_ms: float | None
    ) -> None:
        """Tool-call metrics: count and the time the gateway added (the pool times upstreams)."""
        known = record["server"] in self.table.servers
        metrics.tool_calls(
            record["server"] if known else "<unknown>",
            record["tool"] if known else "<unknown>",
            record["status"],
        ).inc()
        if upstream_ms is not None:
            metrics.CALL_OVERHEAD.observe(max(0.0, elapsed_ms - upstream_ms) / 1000)

    def record_org(self, server: str, principal: Principal) -> str | None:
        """The org a call is filed under: its server's (docs/TENANCY.md).

        A platform-owned server's calls (or a call to no known server) go under the caller's.
        """
        entry = self.table.servers.get(server)
        return entry.org if entry is not None and entry.org else principal.org

    async def record(
        self, record: dict[str, Any], principal: Principal, org: str | None = None
    ) -> bool:
        """Publish gateway.tool.called (payload `record`) under `org` (default: the caller's).

        It is acknowledged before the response, unless async; False when it could not be
        stored in time.
        """
        if self.bus is None:
            return True
        event = TOOL_CALLED.event(
            record,  # type: ignore[arg-type]
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
        """Publish one audit event until acknowledged or GATEWAY_AUDIT_DEADLINE_S passes.

        Every attempt carries the event's id, so a publish that did arrive before its
        acknowledgement was lost is stored once (JetStream deduplicates; audit too).
        """
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


def _arguments(params: dict[str, Any]) -> dict[str, Any] | None:
    """The call's arguments when they are an object."""
    args = params.get("arguments")
    return args if isinstance(args, dict) else None
