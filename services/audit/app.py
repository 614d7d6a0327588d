"""The audit service app."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from libs.common.app import build_app
from libs.common.outbound import Guard
from services.audit import alerts, consumers, platform_metrics, retention
from services.audit.context import AuditContext
from services.audit.live import Hub
from services.audit.routes import activity, calls, health, live, monitoring
from services.audit.routes import alerts as alert_routes
from services.audit.settings import AuditSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: AuditSettings) -> Starlette:
    """Build the audit app."""

    @asynccontextmanager
    async def extra(state: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        async with consumers.running(
            state["bus"],
            state["pool"],
            settings.arguments,
            settings.ack_wait_s,
            settings.lag_interval_s,
            settings.batch_linger_ms / 1000,
        ):
            pool = state["pool"]
            jobs = [
                asyncio.create_task(
                    retention.run_forever(
                        pool,
                        settings.retention_days,
                        settings.retention_batch,
                        settings.retention_interval_s,
                    )
                ),
                asyncio.create_task(
                    alerts.run_forever(
                        pool,
                        settings.alert_interval_s,
                        settings.alert_webhook_url,
                        Guard(settings.ssrf_allowlist),
                    )
                ),
            ]
            hub = Hub(state["bus"], pool, settings)
            await hub.start()
            figures = platform_metrics.attach(pool, state["bus"], settings.platform_metrics_s)
            try:
                context = AuditContext(pool, state["bus"], settings, hub, state["verifier"])
                yield {"audit": context}
            finally:
                platform_metrics.detach(figures)
                await hub.stop()
                for job in jobs:
                    job.cancel()
                for job in jobs:
                    with contextlib.suppress(asyncio.CancelledError):
                        await job

    return build_app(
        settings,
        [
            *health.routes,
            *calls.routes,
            *activity.routes,
            *monitoring.routes,
            *alert_routes.routes,
            *live.routes,
        ],
        migrations=MIGRATIONS_DIR,
        extra=extra,
    )
