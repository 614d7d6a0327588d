"""`subscriptions/listen` (2026-07-28): list-changed notifications on the request's own stream.

The response to the listen request is an SSE stream: first
`notifications/subscriptions/acknowledged` with the honored subset of the client's filter, then a
`notifications/{tools,prompts,resources}/list_changed` for every honored kind each time the
registry changes (every replica follows the registry's events, so any replica can hold the
stream), each stamped with `_meta["io.modelcontextprotocol/subscriptionId"]` = the request id.
The stream ends when the client disconnects. `resourceSubscriptions` (gateway `switchboard://`
URIs; on `/mcp/servers/{path}` the upstream's own) are honored for resources of upstreams the
caller may read that offer subscriptions (2026-07-28 and session-based alike): the replica
holding the stream follows them upstream (`resource_watch.py`) and writes
`notifications/resources/updated`; URIs it cannot follow are left out of the acknowledgement.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from services.gateway.context import context
from services.gateway.features import task_spec
from services.gateway.jsonrpc import INVALID_PARAMS, RpcFault
from services.gateway.routing_table import RoutingTable

KINDS = {
    "toolsListChanged": "notifications/tools/list_changed",
    "promptsListChanged": "notifications/prompts/list_changed",
    "resourcesListChanged": "notifications/resources/list_changed",
}
SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
KEEPALIVE_S = 15.0


def listing_digest(table: RoutingTable) -> bytes:
    """A digest of what clients can list: servers, routability, tools, prompts, resources.

    Registry events that leave it unchanged (status heartbeats, per-tool events replayed after
    the whole server was fetched, periodic resyncs) send no list_changed."""
    h = hashlib.blake2b(digest_size=16)
    for server in sorted(table.servers.values(), key=lambda s: s.name):
        h.update(orjson.dumps([server.name, server.routable, server.fingerprint]))
        for tool in server.tools:
            h.update(orjson.dumps([tool.public, tool.definition], default=dict))
        h.update(orjson.dumps([server.prompts, server.resources], default=dict))
    return h.digest()


def honored(params: dict[str, Any]) -> dict[str, Any]:
    """The subset of the requested filter the gateway delivers."""
    wanted = params.get("notifications")
    if not isinstance(wanted, dict):
        raise RpcFault(INVALID_PARAMS, "params.notifications must be an object.")
    return {key: True for key in KINDS if wanted.get(key) is True}


def listen(
    request: Request, body: dict[str, Any], params: dict[str, Any], headers: dict, ctx: Any
) -> Response:
    """The listen stream for one request."""
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise RpcFault(-32600, "subscriptions/listen needs Accept: text/event-stream.")
    kinds = honored(params)
    task_ids = params["notifications"].get("taskIds")  # the Tasks extension (task_watch.py)
    if task_ids is not None:
        if not isinstance(task_ids, list):
            raise RpcFault(INVALID_PARAMS, "params.notifications.taskIds must be an array.")
        if task_spec.declared(params) is None:
            raise task_spec.missing_capability()
    meta = {SUBSCRIPTION_ID_META_KEY: body["id"]}
    gw = context(request)
    notifier = gw.notifier
    queue = notifier.subscribe()

    def frame(method: str, extra: dict[str, Any] | None = None) -> bytes:
        msg = {"jsonrpc": "2.0", "method": method, "params": {**(extra or {}), "_meta": meta}}
        return b"event: message\ndata: " + orjson.dumps(msg) + b"\n\n"

    aggregate = gw.gateway.aggregate
    updates: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)
    owner = f"listen:{id(updates)}"
    watched: list[tuple[str, str]] = []
    task_notes: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
    task_listen = gw.gateway.tasks.listen(ctx, task_notes)

    async def watch(wanted: Any) -> list[str]:
        """Follow the requested resources that can be followed; the honored URIs."""
        honored_uris: list[str] = []
        for named in wanted if isinstance(wanted, list) else []:
            try:
                server_name, uri = aggregate.subscription(named, ctx)
                server = aggregate.server(server_name, ctx)

                async def deliver(changed: str, server_name: str = server_name) -> None:
                    if not updates.full():
                        updates.put_nowait(aggregate.client_uri(server_name, changed, ctx))

                await gw.watch.add(server, uri, owner, deliver)
            except RpcFault:
                continue
            watched.append((server_name, uri))
            honored_uris.append(named)
        return honored_uris

    async def stream() -> AsyncIterator[bytes]:
        changes = asyncio.ensure_future(queue.get())
        updated = asyncio.ensure_future(updates.get())
        tasked = asyncio.ensure_future(task_notes.get())
        try:
            ack = dict(kinds)
            uris = await watch((params.get("notifications") or {}).get("resourceSubscriptions"))
            if uris:
                ack["resourceSubscriptions"] = uris
            if task_ids is not None:
                ack["taskIds"] = await task_listen.open(task_ids)
            yield frame("notifications/subscriptions/acknowledged", {"notifications": ack})
            while True:
                done, _ = await asyncio.wait(
                    {changes, updated, tasked},
                    timeout=KEEPALIVE_S,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if not done:
                    yield b": ping\n\n"
                    continue
                if tasked in done:
                    yield frame("notifications/tasks", tasked.result())
                    tasked = asyncio.ensure_future(task_notes.get())
                if updated in done:
                    yield frame("notifications/resources/updated", {"uri": updated.result()})
                    updated = asyncio.ensure_future(updates.get())
                if changes in done:
                    while not queue.empty():  # level triggers: one burst, one per kind
                        queue.get_nowait()
                    for key in kinds:
                        yield frame(KINDS[key])
                    changes = asyncio.ensure_future(queue.get())
        finally:
            changes.cancel()
            updated.cancel()
            tasked.cancel()
            await task_listen.close()
            notifier.unsubscribe(queue)
            for server_name, uri in watched:
                gw.watch.remove(server_name, uri, owner)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
    )
