"""The steps of one tools/call after its tool is resolved: features, forward, finish."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from services.gateway import client_meta, param_headers
from services.gateway.call_context import CallContext, for_client
from services.gateway.core import Core
from services.gateway.features import input_bridge, task_spec, tasks
from services.gateway.jsonrpc import FORBIDDEN, INVALID_PARAMS, RESULT_TOO_LARGE, RpcFault, relayed
from services.gateway.routing_table import ServerEntry, ToolEntry

MRTR_KEYS = ("inputResponses", "requestState")


@dataclass(slots=True)
class ToolCall:
    """One tools/call as it runs, and what its record will say."""

    params: dict[str, Any]
    ctx: CallContext
    t0: float = field(default_factory=time.perf_counter)
    tool: ToolEntry | None = None
    upstream_ms: float | None = None
    status: str = "ok"
    code: int | None = None
    message: str | None = None
    size: int = 0
    answered: bool = False  # the call has a result for the client (which needs its record)

    def refused(self, fault: RpcFault) -> None:
        """Note a JSON-RPC failure: denied before the tool is known or for want of a grant."""
        self.status = "denied" if fault.code == FORBIDDEN or self.tool is None else "error"
        self.code, self.message = fault.code, fault.message

    def cancelled(self) -> None:
        """Note that the client cancelled the call."""
        self.status, self.code, self.message = "error", -32800, "cancelled by the client"


class ToolCalls:
    """The features' part of a call, its forward over the pool, and its result."""

    def __init__(self, core: Core, task_calls: tasks.Tasks) -> None:
        self.core = core
        self.tasks = task_calls

    async def prepare(self, call: ToolCall) -> tuple[ServerEntry, dict[str, Any]]:
        """The route and upstream request of a resolved call: what the features add.

        Arguments checked, the client's `_meta`, a multi-round-trip retry's answers, the Tasks
        extension or a task added.
        """
        tool, params, ctx = call.tool, call.params, call.ctx
        assert tool is not None
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
        task_settings = task_spec.declared(params) if ctx.modern else None
        if task_settings is not None:  # the Tasks extension, declared for this request
            task_spec.declare(forwarded, task_settings)
        route = tool.source or self.core.table.servers[tool.server]  # an imported tool: its source
        if "task" in params and task_spec.in_session(ctx):  # 2025-11-25: task-augmented
            name = str(params.get("name"))
            await self.tasks.augment(route, forwarded, params["task"], tool, name)
        return route, forwarded

    async def forward(
        self, call: ToolCall, route: ServerEntry, forwarded: dict[str, Any]
    ) -> dict[str, Any]:
        """The upstream's result (from where the call was parked, for a retry).

        A task's id is wrapped; a legacy client is asked for the input the upstream needs.
        """
        tool, ctx = call.tool, call.ctx
        assert tool is not None
        core = self.core
        if "requestState" in forwarded and core.parked_retry(forwarded, ctx):
            key = input_bridge.principal_key(ctx)
            reply, call.upstream_ms = await core.parking.resume(forwarded, key)  # type: ignore[union-attr]
        else:
            reply, call.upstream_ms = await core.pool.request(
                route,
                "tools/call",
                forwarded,
                on_notify=input_bridge.relaying(core, route, ctx),
                retry=(tool.read_only or tool.idempotent) and "task" not in forwarded,
                principal=ctx.principal.to_dict() if _sandboxed(route) else None,
                headers=param_headers.for_upstream(tool, forwarded["arguments"]),
                tool=tool.name,
            )
        if "error" in reply:
            raise relayed(reply["error"])
        result = reply.get("result") or {}
        if result.get("resultType") == "task" or "task" in forwarded:
            result = await self.tasks.created(result, route, forwarded, ctx)
        if not ctx.modern and result.get("resultType") == "input_required":
            headers = param_headers.for_upstream(tool, forwarded["arguments"])
            result = await input_bridge.resolve(
                core, route, "tools/call", forwarded, result, ctx, headers
            )
        return result

    def finish(self, call: ToolCall, result: dict[str, Any]) -> dict[str, Any]:
        """The result for the client; past GATEWAY_MAX_RESULT_BYTES it is -32013 instead."""
        call.size = len(orjson.dumps(result))
        limit = self.core.settings.max_result_bytes
        if call.size > limit:
            raise RpcFault(
                RESULT_TOO_LARGE,
                f"The tool result is {call.size} bytes; the limit is {limit}.",
                {"size": call.size, "limit": limit},
            )
        if result.get("isError"):
            call.status = "error"
        call.answered = True
        return for_client(result, call.ctx)


def _sandboxed(route: ServerEntry) -> bool:
    """True for tools served through the sandbox (they get the principal)."""
    return route.transport in ("stdio", "code")
