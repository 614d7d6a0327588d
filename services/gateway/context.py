"""What the gateway's handlers share, typed: the app's parts, made once in its lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from libs.common.bus import Bus
from libs.common.trusted_hosts import TrustedHosts
from services.gateway.clients.relay import Inflight, Relay
from services.gateway.clients.sessions import Notifier, SessionCodec
from services.gateway.features.resource_watch import ResourceWatch
from services.gateway.protocol import Gateway
from services.gateway.rate_limit import RateLimiter
from services.gateway.registry_sync import RegistrySync
from services.gateway.routing_table import RoutingTable
from services.gateway.settings import GatewaySettings
from services.gateway.upstreams.pool import UpstreamPool

STATE_KEY = "gateway_context"


@dataclass
class GatewayContext:
    """The service's shared parts."""

    settings: GatewaySettings
    bus: Bus
    gateway: Gateway
    table: RoutingTable
    pool: UpstreamPool
    sessions: SessionCodec
    notifier: Notifier
    registry_sync: RegistrySync
    inflight: Inflight
    relay: Relay
    watch: ResourceWatch
    limiter: RateLimiter
    trusted_hosts: TrustedHosts


def context(request: Request) -> GatewayContext:
    """The gateway's shared parts, from the request's state."""
    return getattr(request.state, STATE_KEY)
