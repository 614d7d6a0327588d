"""What every upstream transport shares: its failures, the message hook, the parking signal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import aiohttp
import orjson
import structlog
from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    PROTOCOL_VERSION_META_KEY,
)

from libs.common import sse
from services.gateway.jsonrpc import RESULT_TOO_LARGE, RpcFault
from services.gateway.routing_table import ServerEntry
from services.gateway.upstreams.http_client import Response

log = structlog.get_logger()

CLIENT_INFO = {"name": "switchboard-gateway", "version": "0.1.0"}
SMALL_BODY = 64 * 1024  # what an answer to a notification or to our response may hold
Notify = Callable[[dict[str, Any]], Awaitable[None]]


class TransportFailure(Exception):
    """The upstream could not be reached or answered with something that is not MCP."""


class SessionExpired(Exception):
    """The upstream no longer knows our session (404): initialise again."""


class Parkable(Protocol):
    """An upstream session that can hold a call open for a client's retry (`parking.py`)."""

    server: ServerEntry

    async def respond(self, message: dict[str, Any]) -> None:
        """Send our answer to a server-to-client request over the session."""

    async def resume(self, resp: Any, rid: int, on_notify: Notify) -> dict[str, Any]:
        """Read on for a parked call's answer (it may park again)."""

    async def abandon(self, resp: Any, rid: int) -> None:
        """Drop a parked call and tell the upstream it is cancelled."""


class InputNeeded(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a message hook: park the call (its SSE response stays open) for a retry.

    `park(need)` turns it into the `input_required` result for the client; the upstream fills in
    the open response (`resp`, `rid`, `upstream`) before it propagates.
    """

    def __init__(self, request: dict[str, Any], park: Callable[..., Awaitable[dict]]) -> None:
        super().__init__(request.get("method"))
        self.request, self.park = request, park
        self.upstream: Parkable | None = None
        self.resp: Response | None = None
        self.rid: int = 0


def too_large(server: str, limit: int) -> RpcFault:
    """-32013: the upstream's answer passed the limit while it was being read."""
    return RpcFault(
        RESULT_TOO_LARGE,
        f"The server {server!r} answered with more than {limit} bytes; the answer was dropped.",
        {"server": server, "limit": limit},
    )


def with_modern_meta(params: dict[str, Any] | None, version: str) -> dict[str, Any]:
    """Add the 2026-07-28 per-request envelope to `params._meta`."""
    params = dict(params or {})
    meta = dict(params.get("_meta") or {})
    meta.setdefault(PROTOCOL_VERSION_META_KEY, version)
    meta.setdefault(CLIENT_INFO_META_KEY, CLIENT_INFO)
    meta.setdefault(CLIENT_CAPABILITIES_META_KEY, {})
    params["_meta"] = meta
    return params


async def sse_events(
    resp: aiohttp.ClientResponse, max_event_bytes: int
) -> AsyncIterator[tuple[str, bytes]]:
    """(event type, data) of an SSE response's events that carry data, in order.

    Priming events carry none: they are skipped. An event past `max_event_bytes` raises
    sse.EventTooLarge."""
    async for event in sse.events(resp.content.iter_any(), max_event_bytes=max_event_bytes):
        if event.data:
            yield event.event, event.data


async def json_messages(
    events: AsyncIterator[tuple[str, bytes]], server: str, garbage: str, only: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """The JSON objects an upstream's event stream carries (of event type `only`, when given).

    Data that is not JSON is logged as `garbage` and skipped; JSON that is not an object too."""
    async for kind, data in events:
        if only is not None and kind != only:
            continue
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            log.warning(garbage, server=server)
            continue
        if isinstance(msg, dict):
            yield msg
