"""One MCP request run while its answer is sent: JSON, or SSE once the upstream speaks first."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog
from starlette.responses import Response, StreamingResponse

from services.gateway.call_context import CallContext
from services.gateway.clients.answers import KEEPALIVE_S, SSE_HEADERS, json_message
from services.gateway.clients.relay import Inflight
from services.gateway.jsonrpc import INTERNAL_ERROR, RpcFault, error, response
from services.gateway.protocol import Gateway

log = structlog.get_logger()


class StreamedCall:
    """One request run while its answer is sent: a JSON response, or an SSE stream.

    The stream carries the notifications the upstream sends before its result (progress, log
    messages) and then the result, as on the upstream's own response stream.
    """

    def __init__(
        self,
        gateway: Gateway,
        inflight: Inflight,
        body: dict[str, Any],
        params: dict[str, Any],
        ctx: CallContext,
    ) -> None:
        self.rid, self.inflight = body["id"], inflight
        self.key = (ctx.session_id, body["id"])
        # the call's messages once the answer is SSE (most calls end first and never need one)
        self.queue: asyncio.Queue[dict[str, Any] | None] | None = None
        self.streaming = False  # the answer is SSE: the call's messages go through the queue
        # resolved with True by the first notification, with False when the call ends first
        self.notified = asyncio.get_running_loop().create_future()
        ctx.notify = self._notify
        self.task = asyncio.ensure_future(gateway.handle(body["method"], params, ctx))
        self.task.add_done_callback(self._finished)
        if ctx.session_id is not None:  # a legacy session's call can be cancelled by its id
            self.inflight[self.key] = self.task

    def _forget(self) -> None:
        """Take the call out of the cancellable ones."""
        if self.inflight.get(self.key) is self.task:
            del self.inflight[self.key]

    async def _notify(self, msg: dict[str, Any]) -> None:
        """A message of the upstream for this call's client: the answer becomes SSE."""
        self._stream().put_nowait(msg)
        if not self.notified.done():
            self.notified.set_result(True)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """The call ended: on a stream, its response message and the stream's end."""
        if self.streaming:
            queue = self._stream()
            queue.put_nowait(self._message(task))
            queue.put_nowait(None)
        elif not self.notified.done():
            self.notified.set_result(False)

    def _stream(self) -> asyncio.Queue[dict[str, Any] | None]:
        """The queue of the call's messages, the answer being SSE from now on."""
        self.streaming = True
        if self.queue is None:
            self.queue = asyncio.Queue()
        return self.queue

    def _message(self, task: asyncio.Task[Any]) -> dict[str, Any]:
        """The JSON-RPC response of the ended call."""
        if task.cancelled():
            return error(self.rid, -32800, "The request was cancelled.")
        exc = task.exception()
        if isinstance(exc, RpcFault):
            return error(self.rid, exc.code, exc.message, exc.data)
        if exc is not None:
            log.error("mcp_call_failed", error=repr(exc))
            return error(self.rid, INTERNAL_ERROR, "Internal error.")
        return response(self.rid, task.result())

    async def answered(self, headers: dict) -> Response:
        """JSON when the call ends before any notification, else SSE from the first one on.

        An upstream error ending the call first is a fault, with its HTTP status.
        """
        try:
            streaming = await self.notified
        except asyncio.CancelledError:
            self.task.cancel()
            raise
        if streaming:
            return self.streamed(headers)
        self._forget()
        try:
            result = self.task.result()
        except asyncio.CancelledError:
            raise RpcFault(-32800, "The request was cancelled.") from None
        return json_message(response(self.rid, result), headers=headers)

    def streamed(self, headers: dict) -> Response:
        """The call's messages as SSE (keep-alive comments while it runs)."""
        self._stream()
        return StreamingResponse(
            self._events(), media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
        )

    async def _events(self) -> AsyncIterator[bytes]:
        queue = self._stream()
        try:
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        msg = await queue.get()
                except TimeoutError:
                    yield b": ping\n\n"
                    continue
                if msg is None:
                    return
                yield b"event: message\ndata: " + orjson.dumps(msg) + b"\n\n"
        finally:
            self._forget()
            if not self.task.done():
                self.task.cancel()
