"""Tasks, for both generations, routed statelessly by wrapped task ids.

See the Tasks part of docs/GATEWAY.md. Two revisions define tasks differently; each is passed
through where the client and the upstream speak the same one:

- 2026-07-28, the Tasks extension (`io.modelcontextprotocol/tasks`): `server/discover` advertises
  it; a client that declares it in a request's `clientCapabilities` has it declared to the
  upstream for that request, which may then answer `tools/call` with `resultType: "task"`.
  `tasks/get`, `tasks/update`, `tasks/cancel` are forwarded; without the declaration they are
  -32021 (the extension has no `tasks/list` or `tasks/result`: -32601). Status notifications
  (`notifications/tasks`) reach the client on `subscriptions/listen` with `taskIds`
  (`task_watch.TaskListen`).
- 2025-11-25, tasks in the core protocol: such a session's `initialize` result declares the
  `tasks` capability (`list`, `cancel`, `requests.tools.call`: what the gateway routes). Tools
  are listed with their upstream's `execution` intact. A `tools/call` with `params.task` is
  forwarded with it only for a tool whose `execution.taskSupport` is `optional` or `required`
  and only to a 2025-11-25 session upstream that declared `tasks.requests.tools.call`; for any
  other tool (the meta-tools of progressive mode too) it is -32601 (the spec's answer for a tool
  without task support). A `required` tool called without `params.task` is forwarded as is: the
  refusal is the upstream's. `tasks/get`, `tasks/cancel` are forwarded; `tasks/result` waits on
  the upstream (`GATEWAY_TASK_RESULT_WAIT_S`, outside the server's concurrency limit and call
  timeout), relaying its server-to-client requests and notifications; `tasks/list` lists the
  caller's tasks from the ownership records (`task_records.py`), one upstream `tasks/get` each, a
  page at a time. `notifications/tasks/status` from the upstream's session stream is relayed to
  the creating session's stream (`task_watch.SessionStatus`).

Task ids. The client gets every upstream task id as `{route}/{owner tag}/{upstream id}`: route is
the server name (`{server}.{source digest}` for a tool imported from an external source, whose
tasks live on the source's connection); owner tag is an HMAC (keyed from the session secret every
replica shares) over route, the server's registry id, the principal's fingerprint and the
upstream id. The upstream binds every task to the gateway's one credential, so the tag is what
keeps principals apart. Any replica unwraps it without state; a tag that does not verify for the
caller (another principal's task, a forged or edited id, a server registered again under the
name), a server the caller may no longer execute on or a task of the other generation is
"unknown task" (-32602), and nothing is sent upstream. Ids inside results and relayed messages
(`taskId`, `_meta["io.modelcontextprotocol/related-task"]`) are wrapped again.

Audit: a task-augmented `tools/call` is recorded (`events.gateway.tool.called`) like any call;
for a task the record describes its creation (`ok`: the upstream accepted it). `tasks/*`
requests and the task's outcome are not recorded.

A little over 300 lines: ids, task-augmented calls and the tasks/* methods of one gateway; the
revisions' rules, listing, records and watches are in task_spec, task_list, task_records and
task_watch.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

import structlog

from libs.common.signed import Signer
from services.gateway import metrics
from services.gateway.clients.sessions import principal_fingerprint
from services.gateway.features import input_bridge
from services.gateway.features.task_list import TaskList
from services.gateway.features.task_records import TaskRecords
from services.gateway.features.task_spec import (
    MODERN_METHODS,
    RELATED_TASK,
    SESSION_METHODS,
    SESSION_VERSION,
    STATUS,
    cannot_run_as_task,
    declare,
    declared,
    in_session,
    missing_capability,
    plain_meta,
)
from services.gateway.features.task_watch import SessionStatus, TaskListen
from services.gateway.jsonrpc import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    UPSTREAM_ERROR,
    UPSTREAM_TIMEOUT,
    RpcFault,
    relayed,
)
from services.gateway.routing_table import ServerEntry, ToolEntry
from services.gateway.upstreams.streamable_http import HttpUpstream
from services.gateway.upstreams.transport import TransportFailure

if TYPE_CHECKING:
    from libs.common.authn import Principal
    from services.gateway.call_context import CallContext
    from services.gateway.core import Core
    from services.gateway.upstreams.transport import Notify

log = structlog.get_logger()

PURPOSE = "gateway task id"
OWNER_CHARS = 24


def route_tag(route: ServerEntry) -> str:
    """The route part of a wrapped id: the server, plus the source's digest for imported tools."""
    return route.name if route.key == route.name else f"{route.name}.{route.fingerprint[:12]}"


class Tasks:
    """Task ids, task-augmented calls and the tasks/* methods of one gateway."""

    def __init__(self, core: Core) -> None:
        self.core = core
        # this process only, until the app sets the shared secret
        self._signer = Signer(secrets.token_bytes(32), PURPOSE)
        self.records = TaskRecords(core.bus, core.settings.task_ttl_s)
        self.status = SessionStatus(core.pool, core.table, core.relay)
        self.lister = TaskList(core, self.records, self.route, self.rewrap)

    def use_secret(self, secret: bytes) -> None:
        """Sign owner tags with a key derived from the secret every replica shares."""
        self._signer = Signer(secret, PURPOSE)

    async def stop(self) -> None:
        """Stop following upstream session streams."""
        await self.status.stop()

    def listen(self, ctx: CallContext, out: asyncio.Queue[dict[str, Any]]) -> TaskListen:
        """The task part of one client's `subscriptions/listen` (2026-07-28)."""
        return TaskListen(self.unwrap, self.core.table, self.core.pool, ctx, out)

    # ---- ids -------------------------------------------------------------------------------

    def _owned(self, route: ServerEntry, task_id: str, principal: Principal) -> bytes:
        """What the owner tag signs: the task's connection, the server's registry id, its creator.

        A server deleted and registered again under its name is another server."""
        fingerprint = principal_fingerprint(principal)
        return f"{route_tag(route)}\0{route.id}\0{fingerprint}\0{task_id}".encode()

    def wrap(self, route: ServerEntry, task_id: str, principal: Principal) -> str:
        """The id the client sees for an upstream task on `route`."""
        owner = self._signer.tag(self._owned(route, task_id, principal), OWNER_CHARS)
        return f"{route_tag(route)}/{owner}/{task_id}"

    def unwrap(self, wrapped: Any, ctx: CallContext) -> tuple[ServerEntry, str]:
        """(connection, upstream task id) of a wrapped id the caller owns; else -32602."""
        if not isinstance(wrapped, str) or not wrapped:
            raise RpcFault(INVALID_PARAMS, "params.taskId must be a non-empty string.")
        tag, owner, task_id = (wrapped.split("/", 2) + ["", ""])[:3]
        entry = self.route(tag, ctx.principal) if task_id else None
        if entry is None or not self._signer.tag_matches(
            self._owned(entry, task_id, ctx.principal), owner, OWNER_CHARS
        ):
            raise RpcFault(INVALID_PARAMS, "Unknown task.", {"taskId": wrapped[:200]})
        return entry, task_id

    def route(self, tag: str, principal: Principal) -> ServerEntry | None:
        """The connection a route tag names, while the principal may execute on its server."""
        name, _, source = tag.partition(".")
        server = self.core.table.servers.get(name)
        if server is None or not server.routable:
            return None
        if not principal.permits("execute", server.ref):
            return None
        if not source:
            return server
        return next((s for s in server.sources if s.fingerprint[:12] == source), None)

    def rewrap(self, doc: dict[str, Any], route: ServerEntry, ctx: CallContext) -> dict[str, Any]:
        """A result or message params with its upstream task ids wrapped for the client."""
        out = dict(doc)
        if isinstance(out.get("taskId"), str):
            out["taskId"] = self.wrap(route, out["taskId"], ctx.principal)
        meta = out.get("_meta")
        related = meta.get(RELATED_TASK) if isinstance(meta, dict) else None
        if isinstance(related, dict) and isinstance(related.get("taskId"), str):
            related = {**related, "taskId": self.wrap(route, related["taskId"], ctx.principal)}
            out["_meta"] = {**meta, RELATED_TASK: related}  # type: ignore[dict-item]
        return out

    # ---- tools/call ------------------------------------------------------------------------

    async def augment(
        self, route: ServerEntry, forwarded: dict[str, Any], task: Any, tool: ToolEntry, name: str
    ) -> None:
        """Add a 2025-11-25 client's `params.task` to the upstream call, when both sides take it.

        That is when the tool declares task support and its upstream takes task-augmented calls;
        else -32601 (bad `task`: -32602). `name` is the tool as the client called it."""
        ttl = task.get("ttl") if isinstance(task, dict) else None
        if not isinstance(task, dict) or not (
            ttl is None or (isinstance(ttl, int) and not isinstance(ttl, bool) and ttl >= 0)
        ):
            raise RpcFault(
                INVALID_PARAMS, "params.task must be an object with an optional ttl (ms, >= 0)."
            )
        # the tool's `execution.taskSupport` first: absent or forbidden needs no connection
        if tool.task_support == "forbidden" or not await self._takes_tasks(route):
            raise cannot_run_as_task(name)
        forwarded["task"] = {} if ttl is None else {"ttl": ttl}

    async def _takes_tasks(self, route: ServerEntry) -> bool:
        """Whether the upstream is a 2025-11-25 session that declared task-augmented calls."""
        upstream = self.core.pool.upstream(route)
        if not isinstance(upstream, HttpUpstream):
            return False
        if not upstream.connected:  # connect through the pool: its breaker and timeout apply
            await self.core.pool.request(route, "ping", None)
        caps = upstream.capabilities.get("tasks")
        requests = caps.get("requests") if isinstance(caps, dict) else None
        tools = requests.get("tools") if isinstance(requests, dict) else None
        return (
            not upstream.modern
            and upstream.protocol == SESSION_VERSION
            and isinstance(tools, dict)
            and isinstance(tools.get("call"), dict)
        )

    async def created(
        self,
        result: dict[str, Any],
        route: ServerEntry,
        forwarded: dict[str, Any],
        ctx: CallContext,
    ) -> dict[str, Any]:
        """A task-creating `tools/call` result, its id wrapped.

        A 2025-11-25 task is recorded (for tasks/list) and its status followed (for the creating
        session's stream)."""
        if result.get("resultType") == "task":
            return self.rewrap(result, route, ctx)
        task = result.get("task")
        if "task" not in forwarded or not isinstance(task, dict):
            return result
        upstream_id = task.get("taskId")
        if not isinstance(upstream_id, str):
            return result
        wrapped = self.wrap(route, upstream_id, ctx.principal)
        owner = principal_fingerprint(ctx.principal)
        await self.records.add(owner, route_tag(route), route.id, upstream_id)
        if ctx.session_id is not None:
            self.status.watch(route, upstream_id, ctx.session_id, wrapped, task.get("ttl"))
        return {**result, "task": {**task, "taskId": wrapped}}

    # ---- tasks/* ---------------------------------------------------------------------------

    async def handle(self, method: str, params: dict[str, Any], ctx: CallContext) -> dict:
        """One tasks/* request: check the generation, unwrap, forward, wrap again."""
        settings = None
        if ctx.modern:
            if method not in MODERN_METHODS:
                raise RpcFault(METHOD_NOT_FOUND, f"Method not found: {method}", {"method": method})
            settings = declared(params)
            if settings is None:
                raise missing_capability()
        elif not in_session(ctx) or method not in SESSION_METHODS:
            raise RpcFault(METHOD_NOT_FOUND, f"Method not found: {method}", {"method": method})
        if method == "tasks/list":
            return await self.lister.list(params, ctx)
        route, task_id = self.unwrap(params.get("taskId"), ctx)
        upstream = self.core.pool.upstream(route)
        if getattr(upstream, "connected", False) and upstream.modern != ctx.modern:
            raise RpcFault(INVALID_PARAMS, "Unknown task.", {"taskId": params["taskId"][:200]})
        forwarded = {k: v for k, v in params.items() if k != "_meta"}
        forwarded["taskId"] = task_id
        if settings is not None:
            declare(forwarded, settings)
        elif meta := plain_meta(params.get("_meta")):
            forwarded["_meta"] = meta
        if method == "tasks/result":
            reply = await self._wait(route, forwarded, ctx)
        else:
            reply, _ = await self.core.pool.request(route, method, forwarded)
        if "error" in reply:
            raise relayed(reply["error"])
        return self.rewrap(dict(reply.get("result") or {}), route, ctx)

    async def _wait(
        self, route: ServerEntry, forwarded: dict[str, Any], ctx: CallContext
    ) -> dict[str, Any]:
        """tasks/result: held open until the task ends.

        A long wait is not a slow upstream, so it takes no concurrency slot, has its own limit
        and does not trip the breaker."""
        pool = self.core.pool
        upstream = pool.upstream(route)
        if not isinstance(upstream, HttpUpstream):
            raise RpcFault(INVALID_PARAMS, "Unknown task.", {"taskId": str(forwarded["taskId"])})
        pool.admitted(route)
        wait = self.core.settings.task_result_wait_s
        timed = metrics.UpstreamOperation(route.name, "tasks/result", upstream.protocol)
        try:
            with timed:  # not through the pool: timed here
                async with asyncio.timeout(wait):
                    relaying = self._relaying(route, ctx)
                    reply = await upstream.request("tasks/result", forwarded, relaying)
                return timed.reply(reply)
        except TimeoutError:
            raise RpcFault(
                UPSTREAM_TIMEOUT,
                f"The task did not end within {wait:g}s: poll tasks/get, then ask again.",
                {"server": route.name, "timeout_s": wait},
            ) from None
        except TransportFailure as exc:
            upstream.connected = False
            raise RpcFault(
                UPSTREAM_ERROR, f"The server {route.name!r} failed: {exc}", {"server": route.name}
            ) from None

    def _relaying(self, route: ServerEntry, ctx: CallContext) -> Notify:
        """The message hook of a tasks/result: task ids wrapped, messages sent on.

        Requests go to the client (input_bridge); status notifications to the request's stream,
        else the session's."""
        bridge = input_bridge.relaying(self.core, route, ctx)
        relay = self.status.relay

        async def on_message(msg: dict[str, Any]) -> None:
            if isinstance(msg.get("params"), dict):
                msg = {**msg, "params": self.rewrap(msg["params"], route, ctx)}
            if "id" not in msg and ctx.notify is None:
                if msg.get("method") == STATUS and relay is not None and ctx.session_id:
                    await relay.send(ctx.session_id, msg)
                return
            await bridge(msg)

        return on_message
