"""The Tasks extension (`io.modelcontextprotocol/tasks`, 2026-07-28), passed through.

A 2026-07-28 client that declares the extension in its per-request capabilities has it declared
on its behalf to the upstream (only for that request); the upstream may then answer `tools/call`
with `resultType: "task"` and a task id. The gateway hands the client a wrapped id,
`{server}/{principal fingerprint}/{upstream task id}`, so `tasks/get`, `tasks/update` and
`tasks/cancel` route to the right upstream from any replica without state, and only for the
principal that created the task (and who may still execute on that server). The `taskId` in
every result is wrapped again. `server/discover` advertises the extension. Not covered: legacy
clients (they never get tasks: the gateway does not declare the extension for them),
`notifications/tasks` (the upstream's stream is not followed), 2025-11-25 task-augmented
requests (`params.task`) and `tasks/list` / `tasks/result`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp_types import CLIENT_CAPABILITIES_META_KEY

from services.gateway.jsonrpc import INVALID_PARAMS, RpcFault
from services.gateway.sessions import principal_fingerprint

if TYPE_CHECKING:
    from services.gateway.protocol import CallContext, Gateway

EXTENSION = "io.modelcontextprotocol/tasks"
METHODS = ("tasks/get", "tasks/update", "tasks/cancel")


def declared(params: dict[str, Any]) -> Any:
    """The client's settings object for the extension, or None when it did not declare it."""
    meta = params.get("_meta")
    caps = meta.get(CLIENT_CAPABILITIES_META_KEY) if isinstance(meta, dict) else None
    exts = caps.get("extensions") if isinstance(caps, dict) else None
    return exts.get(EXTENSION) if isinstance(exts, dict) else None


def declare(forwarded: dict[str, Any], settings: Any) -> None:
    """Declare the extension to the upstream for this one request."""
    meta = dict(forwarded.get("_meta") or {})
    meta[CLIENT_CAPABILITIES_META_KEY] = {"extensions": {EXTENSION: settings}}
    forwarded["_meta"] = meta


def wrap_result(result: dict[str, Any], server: str, ctx: CallContext) -> dict[str, Any]:
    """The result with its `taskId` wrapped for the client."""
    task_id = result.get("taskId")
    if not isinstance(task_id, str):
        return result
    return {**result, "taskId": f"{server}/{principal_fingerprint(ctx.principal)}/{task_id}"}


async def handle(gateway: Gateway, method: str, params: dict[str, Any], ctx: CallContext) -> Any:
    """tasks/get, tasks/update, tasks/cancel: unwrap the id, check, forward, wrap again."""
    wrapped = params.get("taskId")
    server_name, owner, task_id = (
        (wrapped.split("/", 2) + ["", ""])[:3] if isinstance(wrapped, str) else ("", "", "")
    )
    server = gateway.table.servers.get(server_name)
    principal = ctx.principal
    if (
        not task_id
        or server is None
        or not server.routable
        or owner != principal_fingerprint(principal)
        or not (
            principal.permits("execute", server.name) or principal.permits("execute", server.id)
        )
    ):
        raise RpcFault(INVALID_PARAMS, "Unknown task.", {"taskId": str(wrapped)[:200]})
    forwarded = {k: v for k, v in params.items() if k != "_meta"}
    forwarded["taskId"] = task_id
    declare(forwarded, declared(params) or {})
    reply, _ = await gateway.pool.request(server, method, forwarded)
    if "error" in reply:
        err = reply.get("error") or {}
        raise RpcFault(int(err.get("code", -32603)), str(err.get("message", "")), err.get("data"))
    return wrap_result(dict(reply.get("result") or {}), server.name, ctx)
