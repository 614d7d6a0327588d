"""The HTTP+SSE upstream transport on the official SDK's `sse_client`, for the measurement only.

`SseUpstream` (services/gateway/upstreams/legacy_sse.py) with its stream and its POSTs replaced by
the SDK's: `mcp.client.sse.sse_client` through the outbound guard's httpx2 client factory, messages
converted to and from the SDK's pydantic types. Everything above the wire (request ids,
progress-token rewriting, server-to-client requests, parking) is the hand-written class's own, so
`benchmarks.legacy_sse` compares the two wires alone. It is not used by the gateway: the
measurement in docs/PERFORMANCE.md ("Legacy SSE upstreams") kept the hand-written transport.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import anyio
import mcp_types
import structlog
from mcp.client.sse import sse_client
from mcp.shared.message import SessionMessage

from libs.common.outbound import Guard
from services.gateway.routing_table import ServerEntry
from services.gateway.upstreams.legacy_sse import ENDPOINT_TIMEOUT_S, SseUpstream
from services.gateway.upstreams.transport import TransportFailure

log = structlog.get_logger()


class SdkSseUpstream(SseUpstream):
    """An HTTP+SSE upstream whose stream and POSTs are the SDK's `sse_client`."""

    def __init__(
        self, server: ServerEntry, http: aiohttp.ClientSession, max_event_bytes: int, guard: Guard
    ) -> None:
        super().__init__(server, http, max_event_bytes)
        self.factory = guard.http_client_factory(urlsplit(server.url or "").hostname)
        self._write: Any = None

    async def connect(self) -> None:
        """Run `sse_client` in a task of its own; initialise the session over it."""
        async with self._lock:
            if self.connected:
                return
            await self._teardown()
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._reader = asyncio.get_running_loop().create_task(self._run(ready))
            try:
                async with asyncio.timeout(ENDPOINT_TIMEOUT_S):
                    await asyncio.shield(ready)
            except Exception as exc:
                await self._teardown()
                raise TransportFailure(f"the SSE upstream did not open: {exc}") from None
            self.post_url = self.server.url  # the SDK keeps the endpoint to itself
            await self.initialize()

    async def _run(self, ready: asyncio.Future[None]) -> None:
        """The SDK's client for the stream's life: each message it reads is dispatched."""
        try:
            async with sse_client(
                self.server.url or "",
                headers=dict(self.server.headers),
                timeout=ENDPOINT_TIMEOUT_S,
                sse_read_timeout=24 * 3600.0,
                httpx_client_factory=self.factory,
            ) as (read, write):
                self._write = write
                ready.set_result(None)
                async for item in read:
                    if isinstance(item, Exception):
                        log.warning("sse_upstream_garbage", server=self.server.name)
                        continue
                    msg = item.message.model_dump(by_alias=True, mode="json", exclude_unset=True)
                    await self._dispatch(msg)
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            log.info("sse_upstream_stream_ended", server=self.server.name, error=str(exc))
        finally:
            self._write = None
            self._fail_pending("the SSE upstream closed its stream")

    async def _send(self, message: dict[str, Any]) -> None:
        """Hand one message to the SDK's POST writer."""
        if self._write is None:
            raise TransportFailure("the SSE session is not open")
        parsed = mcp_types.jsonrpc_message_adapter.validate_python(message, by_name=False)
        try:
            await self._write.send(SessionMessage(parsed))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.connected = False
            raise TransportFailure("the SSE session is closed") from None
