"""What every upstream transport shares: its failures, the message hook, the parking signal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    PROTOCOL_VERSION_META_KEY,
)

from services.gateway.jsonrpc import RESULT_TOO_LARGE, RpcFault
from services.gateway.routing_table import ServerEntry
from services.gateway.upstreams.http_client import Response

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
