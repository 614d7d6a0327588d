"""build_app: the Starlette app every service is, with its lifespan, health, metrics and errors."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from libs.common import authn, db, hoststats, migrate, outbox, runtime_metrics, subjects, tracing
from libs.common import bus as busmod
from libs.common import log as logmod
from libs.common import openapi as openapi_doc
from libs.common.errors import EXCEPTION_HANDLERS
from libs.common.events import (
    ServiceHeartbeat,
    ServiceStarted,
    ServiceStopping,
    now_iso,
    service_event,
)
from libs.common.http import RequestContextMiddleware, json_response
from libs.common.http_protocol import CoalescingHttpToolsProtocol
from libs.common.metrics import metrics_endpoint
from libs.common.settings import Settings, SettingsError

log = structlog.get_logger()

Extra = Callable[[dict[str, Any]], AbstractAsyncContextManager[dict[str, Any] | None]]
LOG_RELAY_S = 0.2  # how often a replica sends its buffered WARNING+ lines
StatsSource = Callable[[], Awaitable[dict[str, Any]]]


def instance_id(settings: Settings) -> str:
    """This replica's id: SWITCHBOARD_INSTANCE, else host and pid."""
    return settings.instance or f"{socket.gethostname()}-{os.getpid()}"


@asynccontextmanager
async def platform_runtime(settings: Settings, migrations: Path) -> AsyncIterator[dict[str, Any]]:
    """Open the pool and NATS, migrate, relay the outbox, announce the replica and beat."""
    schema = settings.service
    instance = instance_id(settings)
    started_at = now_iso()
    t0 = time.monotonic()
    async with db.open_pool(settings) as pool, busmod.connect(settings) as bus:
        await migrate.apply(pool, schema=schema, directory=migrations)
        runtime_metrics.track(schema, pool, bus)
        verifier = authn.Verifier(bus, cookie_secure=settings.cookie_secure)
        await verifier.start()
        async with outbox.relaying(pool, schema, bus):
            started = service_event(schema, "started", ServiceStarted).event(
                ServiceStarted(schema, instance, settings.version, started_at), source=schema
            )
            await _publish_quietly(bus, started)

            stats_sources: list[StatsSource] = []  # an `extra` appends its own figures
            meter = hoststats.CpuMeter()

            async def stats() -> dict[str, Any]:
                out = hoststats.snapshot(meter)
                for source in stats_sources:
                    try:
                        out.update(await source())
                    except Exception as exc:
                        log.warning("heartbeat_stats_failed", error=str(exc))
                return out

            async def beat() -> None:
                kind = service_event(schema, "heartbeat", ServiceHeartbeat)
                while True:
                    payload = ServiceHeartbeat(
                        schema,
                        instance,
                        settings.version,
                        started_at,
                        round(time.monotonic() - t0, 3),
                        settings.heartbeat_s,
                        await stats(),
                    )
                    await _publish_quietly(bus, kind.event(payload, source=schema))
                    await asyncio.sleep(settings.heartbeat_s)

            sink = logmod.forward(schema)

            async def relay_logs() -> None:
                subject = subjects.service_logs(schema)
                while True:
                    while sink:
                        line = sink.popleft()
                        try:
                            await bus.send(subject, orjson.dumps({**line, "instance": instance}))
                        except Exception:
                            sink.appendleft(line)  # kept (bounded) until NATS is back
                            break
                    await asyncio.sleep(LOG_RELAY_S)

            heart = asyncio.create_task(beat())
            relay = asyncio.create_task(relay_logs())
            try:
                yield {
                    "pool": pool,
                    "bus": bus,
                    "verifier": verifier,
                    "settings": settings,
                    "instance": instance,
                    "started_at": started_at,
                    "stats_sources": stats_sources,
                }
            finally:
                runtime_metrics.untrack(schema, pool)
                logmod.stop_forwarding(schema, sink)
                for task in (heart, relay):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                stopping = service_event(schema, "stopping", ServiceStopping)
                await _publish_quietly(
                    bus, stopping.event(ServiceStopping(schema, instance), source=schema)
                )


async def _publish_quietly(bus: busmod.Bus, event: Any) -> None:
    """Publish a platform event; NATS being away must not stop the service."""
    try:
        await bus.publish(event, timeout=2)
    except Exception as exc:
        log.warning("platform_event_not_published", event_type=event.type, error=str(exc))


async def healthz(request: Request) -> Response:
    """Alive."""
    return json_response({"status": "ok", "service": request.app.state.service})


async def readyz(request: Request) -> Response:
    """Ready when Postgres and NATS answer."""
    checks = {
        "postgres": await db.ping(request.state.pool),
        "nats": request.state.bus.connected,
    }
    ready = all(checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return json_response(body, 200 if ready else 503)


async def openapi(request: Request) -> Response:
    """The OpenAPI document: the routes, with the schemas their handlers use."""
    state = request.app.state
    if getattr(state, "openapi", None) is None:
        state.openapi = openapi_doc.build(state.service, state.version, request.app.routes)
    return json_response(state.openapi)


def build_app(
    settings: Settings,
    routes: Sequence[BaseRoute],
    *,
    migrations: Path,
    extra: Extra | None = None,
    middleware: Sequence[Middleware] = (),
    body_limits: Mapping[str, int] | None = None,
) -> Starlette:
    """The service app: platform runtime, then `extra` (service-specific) in the lifespan.

    `body_limits` ({path regex: max bytes}) lets a few routes take bodies over the platform cap."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        async with platform_runtime(settings, migrations) as state:
            if extra is None:
                yield state
                return
            async with extra(state) as more:
                yield {**state, **(more or {})}

    # the service's own routes first: the router tries them in order, and they are the hot ones
    all_routes: list[BaseRoute] = [
        *routes,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    app = Starlette(
        routes=all_routes,
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[
            Middleware(
                RequestContextMiddleware,
                service=settings.service,
                max_body_bytes=settings.max_body_bytes,
                instance=instance_id(settings),
                body_limits=body_limits,
            ),
            *middleware,
        ],
    )
    app.router.redirect_slashes = False  # /x/ and /x are different routes; unknown → JSON 404
    app.state.service = settings.service
    app.state.version = settings.version
    app.state.settings = settings
    return app


def run(settings_cls: type[Settings], create_app: Callable[[Any], Starlette]) -> None:
    """`python -m services.<name>`: settings, logging, uvicorn with uvloop and httptools."""
    try:
        settings = settings_cls.from_env()
        traced = tracing.configure(settings, instance_id(settings))
    except SettingsError as exc:
        print(f"{settings_cls.service}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logmod.configure(
        settings.service, settings.log_level, levels=logmod.parse_levels(settings.log_levels)
    )
    if traced:
        log.info("tracing_on", endpoint=tracing.traces_endpoint(settings))
    try:
        _serve(settings, create_app)
    finally:
        tracing.shutdown()  # the spans still batched are exported before the process ends


def _serve(settings: Settings, create_app: Callable[[Any], Starlette]) -> None:
    """Run uvicorn (uvloop, httptools) until the service is stopped."""
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,  # httptools, one write per simple response
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.drain_s),
        timeout_keep_alive=settings.keepalive_s,
        lifespan="on",
        server_header=False,
        # the peer is nginx: uvicorn would otherwise take the client from X-Forwarded-For,
        # which nginx appends to whatever the client sent (auth reads nginx's X-Real-IP)
        proxy_headers=False,
    )
