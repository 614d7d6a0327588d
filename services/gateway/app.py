"""The gateway service app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from libs.common.app import build_app
from libs.common.trusted_hosts import TrustedHosts
from services.gateway import registry_sync
from services.gateway.clients import sessions
from services.gateway.clients.relay import Inflight, Relay
from services.gateway.clients.subscriptions import listing_digest
from services.gateway.context import STATE_KEY, GatewayContext
from services.gateway.features.parking import Parking
from services.gateway.features.resource_watch import ResourceWatch
from services.gateway.protocol import Gateway
from services.gateway.rate_limit import RateLimiter, parse_overrides
from services.gateway.routes import admin, legacy_sse, mcp, wellknown
from services.gateway.routing_table import RoutingTable
from services.gateway.settings import GatewaySettings
from services.gateway.upstreams.pool import UpstreamPool

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: GatewaySettings) -> Starlette:
    """Build the gateway app."""

    @asynccontextmanager
    async def extra(state: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        bus = state["bus"]
        # OAuth 2.1 access tokens for MCP clients are issued for this resource (RFC 8707), by
        # the platform's issuer (the public URL); every /mcp endpoint is this one resource
        issuer = settings.public_url.rstrip("/")
        state["verifier"].accept_audience(issuer + "/mcp", issuer)
        table = RoutingTable(settings.separator)
        pool = UpstreamPool(settings, bus)
        await pool.start()
        notifier = sessions.Notifier(digest=partial(listing_digest, table))
        codec = sessions.SessionCodec(
            await sessions.shared_secret(bus, settings.session_secret), settings.session_ttl_s
        )
        await sessions.follow_ended(bus, codec)
        # calls of session upstreams parked for a 2026-07-28 client's retry (any replica's)
        parking = Parking(bus, codec.secret, settings.upstream_timeout_s)
        await parking.start()
        sync = registry_sync.RegistrySync(
            bus, table, pool, notifier.tools_changed, settings.resync_s, settings.gc_freeze
        )
        inflight: Inflight = {}
        relay = Relay(bus, inflight)  # SSE session streams and cancellation across replicas
        await relay.start()
        watch = ResourceWatch(pool, bus, table)  # upstream resource updates for subscribers
        await watch.start()
        gateway = Gateway(settings, table, pool, bus, parking=parking, relay=relay, watch=watch)
        gateway.tasks.use_secret(codec.secret)  # task ids: every replica unwraps them
        limiter = RateLimiter(
            bus, settings.rate_limit_per_min, parse_overrides(settings.rate_limit_overrides)
        )
        await limiter.start()
        ctx = GatewayContext(
            settings=settings,
            bus=bus,
            gateway=gateway,
            table=table,
            pool=pool,
            sessions=codec,
            notifier=notifier,
            registry_sync=sync,
            inflight=inflight,
            relay=relay,
            watch=watch,
            limiter=limiter,
            trusted_hosts=TrustedHosts.of(
                settings.public_url, settings.allowed_hosts, settings.allowed_origins
            ),
        )
        try:
            async with registry_sync.running(sync):
                yield {STATE_KEY: ctx}
        finally:
            await gateway.tasks.stop()
            await watch.stop()
            await relay.stop()
            await parking.stop()
            await pool.close()

    return build_app(
        settings,
        [
            mcp.routes[0],  # POST /mcp first: every tools/call of the main endpoint matches it
            *legacy_sse.server_routes,  # before /mcp/servers/{path:path}, which would take them
            *mcp.routes[1:],
            *legacy_sse.routes,
            *admin.routes,
            *wellknown.routes,
        ],
        migrations=MIGRATIONS_DIR,
        extra=extra,
    )
