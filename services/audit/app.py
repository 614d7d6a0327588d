"""The audit service app."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from libs.common.app import build_app
from services.audit import consumers
from services.audit.routes import activity, calls, health
from services.audit.settings import AuditSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: AuditSettings) -> Starlette:
    """Build the audit app."""

    @asynccontextmanager
    async def extra(state: dict[str, Any]) -> AsyncIterator[None]:
        async with consumers.running(
            state["bus"], state["pool"], settings.arguments, settings.ack_wait_s
        ):
            yield

    return build_app(
        settings,
        [*health.routes, *calls.routes, *activity.routes],
        migrations=MIGRATIONS_DIR,
        extra=extra,
    )
