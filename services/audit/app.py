"""The audit service app."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from libs.common.app import build_app
from services.audit import consumers, retention
from services.audit.routes import activity, calls, health, monitoring
from services.audit.settings import AuditSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: AuditSettings) -> Starlette:
    """Build the audit app."""

    @asynccontextmanager
    async def extra(state: dict[str, Any]) -> AsyncIterator[None]:
        async with consumers.running(
            state["bus"], state["pool"], settings.arguments, settings.ack_wait_s
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
            ]
            try:
                yield
            finally:
                for job in jobs:
                    job.cancel()
                for job in jobs:
                    with contextlib.suppress(asyncio.CancelledError):
                        await job

    return build_app(
        settings,
        [*health.routes, *calls.routes, *activity.routes, *monitoring.routes],
        migrations=MIGRATIONS_DIR,
        extra=extra,
    )
