"""`subscriptions/listen` (2026-07-28): list-changed notifications on the request's own stream.

The response to the listen request is an SSE stream: first
`notifications/subscriptions/acknowledged` with the honored subset of the client's filter, then a
`notifications/{tools,prompts,resources}/list_changed` for every honored kind each time the
registry changes (every replica follows the registry's events, so any replica can hold the
stream), each stamped with `_meta["io.modelcontextprotocol/subscriptionId"]` = the request id.
The stream ends when the client disconnects. Per-resource subscriptions (`resourceSubscriptions`)
are not honored (they are left out of the acknowledgement), as upstream resource updates are not
followed yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from services.gateway.jsonrpc import INVALID_PARAMS, RpcFault

KINDS = {
    "toolsListChanged": "notifications/tools/list_changed",
    "promptsListChanged": "notifications/prompts/list_changed",
    "resourcesListChanged": "notifications/resources/list_changed",
}
SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
KEEPALIVE_S = 15.0


def honored(params: dict[str, Any]) -> dict[str, Any]:
    """The subset of the requested filter the gateway delivers."""
    wanted = params.get("notifications")
    if not isinstance(wanted, dict):
        raise RpcFault(INVALID_PARAMS, "params.notifications must be an object.")
    return {key: True for key in KINDS if wanted.get(key) is True}


def listen(
    request: Request, body: dict[str, Any], params: dict[str, Any], headers: dict
) -> Response:
    """The listen stream for one request."""
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise RpcFault(-32600, "subscriptions/listen needs Accept: text/event-stream.")
    kinds = honored(params)
    meta = {SUBSCRIPTION_ID_META_KEY: body["id"]}
    notifier = request.state.notifier
    queue = notifier.subscribe()

    def frame(method: str, extra: dict[str, Any] | None = None) -> bytes:
        msg = {"jsonrpc": "2.0", "method": method, "params": {**(extra or {}), "_meta": meta}}
        return b"event: message\ndata: " + orjson.dumps(msg) + b"\n\n"

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield frame("notifications/subscriptions/acknowledged", {"notifications": kinds})
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        await queue.get()
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                while not queue.empty():  # level triggers: one burst, one notification per kind
                    queue.get_nowait()
                for key in kinds:
                    yield frame(KINDS[key])
        finally:
            notifier.unsubscribe(queue)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
    )
