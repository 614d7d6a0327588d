"""A 2026-07-28 upstream's `input_required` result, answered for a legacy (session) client.

Current-revision clients get `input_required` results as they are and retry with
`inputResponses` + `requestState`, which the gateway forwards (any replica can take the retry:
the state lives in the upstream's opaque `requestState`). A legacy client cannot: it expects
server-to-client requests. So for a legacy session the gateway sends each embedded request
(`elicitation/create`, `sampling/createMessage`, `roots/list`) to the client over the session's
stream (the `GET /mcp` stream, or the `GET /sse` stream), waits for the answer the client POSTs
(which may land on any replica: `Relay.client_reply` routes it over NATS), and retries the
upstream call with the answers, for up to `MAX_ROUNDS` rounds.

A session-based (2025-era) upstream instead sends server-to-client JSON-RPC requests on the
call's SSE response (or its SSE stream). `relaying` answers them: `ping` at once; for a legacy
client, by asking it over its session stream as above and POSTing the answer upstream on the
upstream session; for a 2026-07-28 client, by parking the call and answering `input_required`
(`parking.py`). On an SSE upstream's shared stream a request reaches this hook only when exactly
one call is in flight on that upstream session (`legacy_sse.py`); otherwise the upstream gets
-32601 and no client sees it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from services.gateway.jsonrpc import UPSTREAM_ERROR, RpcFault, relayed, well_formed
from services.gateway.upstreams.legacy_sse import SseUpstream
from services.gateway.upstreams.streamable_http import HttpUpstream
from services.gateway.upstreams.transport import InputNeeded

if TYPE_CHECKING:
    from services.gateway.call_context import CallContext
    from services.gateway.core import Core
    from services.gateway.routing_table import ServerEntry

MAX_ROUNDS = 5
_answering: set[asyncio.Task[None]] = set()
Ask = Callable[[str, dict[str, Any] | None], Awaitable[dict[str, Any]]]


async def resolve(
    core: Core,
    server: ServerEntry,
    method: str,
    forwarded: dict[str, Any],
    result: dict[str, Any],
    ctx: CallContext,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Ask the legacy client what the upstream needs and retry, until a complete result.

    Each retry carries the call's `Mcp-Param-*` `headers`."""
    for _ in range(MAX_ROUNDS):
        if result.get("resultType") != "input_required":
            return result
        if ctx.ask is None:
            raise RpcFault(
                UPSTREAM_ERROR,
                "The server needs input from the client, which this connection cannot carry.",
                {"server": server.name},
            )
        responses: dict[str, Any] = {}
        for key, request in (result.get("inputRequests") or {}).items():
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise RpcFault(UPSTREAM_ERROR, "The server sent a malformed input request.")
            try:
                answer = await ctx.ask(request["method"], request.get("params"))
            except TimeoutError:
                raise RpcFault(
                    UPSTREAM_ERROR, "The client did not answer the input request."
                ) from None
            if "error" in answer:  # the client's own error (well-formed or made so)
                raise relayed(well_formed(answer)["error"])
            responses[key] = answer.get("result") or {}
        forwarded = {**forwarded, "inputResponses": responses}
        forwarded.pop("requestState", None)
        if "requestState" in result:
            forwarded["requestState"] = result["requestState"]
        reply, _ = await core.pool.request(
            server, method, forwarded, on_notify=ctx.notify, headers=headers
        )
        if "error" in reply:
            raise relayed(reply["error"])
        result = reply.get("result") or {}
    raise RpcFault(UPSTREAM_ERROR, f"The server asked for input more than {MAX_ROUNDS} times.")


def relaying(
    core: Core, server: ServerEntry, ctx: CallContext
) -> Callable[[dict], Awaitable[None]]:
    """The upstream message hook of one call: notifications to the client, requests answered.

    `server` is the connection the call went to (a source's, for an imported tool): answers go
    back on it.
    """

    async def on_message(msg: dict[str, Any]) -> None:
        if "id" not in msg:
            if ctx.notify is not None:
                await ctx.notify(msg)
            return
        if ctx.modern and msg.get("method") != "ping" and _parkable(core, server):
            # a 2026-07-28 client: park the call, answer `input_required` (parking.py)
            assert core.parking is not None
            park = partial(core.parking.park, server, principal_key(ctx))
            raise InputNeeded(msg, park)
        task = asyncio.get_running_loop().create_task(_answer(core, server, msg, ctx))
        _answering.add(task)
        task.add_done_callback(_answering.discard)

    return on_message


async def _answer(core: Core, server: ServerEntry, msg: dict[str, Any], ctx: CallContext) -> None:
    """Answer one server-to-client request of an upstream, through the client when possible."""
    reply: dict[str, Any] = {"jsonrpc": "2.0", "id": msg["id"]}
    method = str(msg.get("method"))
    if method == "ping":
        reply["result"] = {}
    elif ctx.ask is None or ctx.modern:
        reply["error"] = {"code": -32601, "message": f"The gateway's client cannot take {method}."}
    else:
        try:
            answer = await ctx.ask(method, msg.get("params"))
        except TimeoutError:
            answer = {"error": {"code": -32001, "message": "The client did not answer in time."}}
        if "result" in answer:
            reply["result"] = answer["result"]
        else:
            reply["error"] = answer.get("error") or {"code": -32603, "message": "no answer"}
    if server.name in core.table.servers:
        upstream = core.pool.upstream(server)
        respond = getattr(upstream, "respond", None)
        if respond is not None:
            await respond(reply)


def _parkable(core: Core, server: ServerEntry) -> bool:
    """Whether the call runs on an upstream session that can hold it open for a retry."""
    upstream = core.pool.upstream(server)
    return core.parking is not None and isinstance(upstream, HttpUpstream | SseUpstream)


def principal_key(ctx: CallContext) -> str:
    """Who may retry a parked call."""
    return f"{ctx.principal.kind}:{ctx.principal.id}"
