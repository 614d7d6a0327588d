"""GET /api/v1/health: the platform's status (public, no secrets)."""

from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.http import json_response
from services.audit import health, store
from services.audit.context import context_of

RECENT = timedelta(hours=1)


async def get_health(request: Request) -> Response:
    """Every service's replicas with last heartbeat, version and uptime."""
    async with context_of(request).pool.acquire() as conn:
        rows = await store.list_instances(conn, datetime.now(UTC) - RECENT)
    return json_response(health.platform_health(rows))


routes = [Route("/api/v1/health", get_health, methods=["GET"])]
