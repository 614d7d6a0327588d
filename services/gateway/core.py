"""The narrow core the gateway's features receive instead of the `Gateway` object."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from libs.common.bus import Bus
from services.gateway.call_context import CallContext
from services.gateway.features.parking import Parking, holds
from services.gateway.routing_table import RoutingTable
from services.gateway.settings import GatewaySettings
from services.gateway.upstreams.pool import UpstreamPool

if TYPE_CHECKING:
    from services.gateway.clients.relay import Relay

CallTool = Callable[[dict[str, Any], CallContext], Awaitable[dict[str, Any]]]


@dataclass
class Core:
    """What features share of the gateway.

    The routing table, the upstream pool, the bus, the settings, the tools/call path (checked,
    limited and audited), parked calls and the client relay.
    """

    settings: GatewaySettings
    table: RoutingTable
    pool: UpstreamPool
    bus: Bus | None
    call_tool: CallTool
    parking: Parking | None = None  # calls of session upstreams awaiting a retry
    relay: Relay | None = None  # client session streams on any replica

    def parked_retry(self, params: dict[str, Any], ctx: CallContext) -> bool:
        """A 2026-07-28 retry of a call parked by a replica (not an upstream's own state)."""
        return ctx.modern and self.parking is not None and holds(params)
