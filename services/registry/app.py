"""The registry service app."""

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from libs.common.app import build_app
from services.registry import consumers, health, orgs, rpc
from services.registry.context import Registry
from services.registry.crypto import SecretBox
from services.registry.routes import (
    catalog,
    config,
    pages,
    secrets,
    servers,
    shares,
    sources,
    tools,
    transfer,
)
from services.registry.settings import RegistrySettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings: RegistrySettings) -> Starlette:
    """Build the registry app."""
    box = SecretBox.from_settings(settings.master_keys, settings.master_key, settings.master_key_id)

    @asynccontextmanager
    async def extra(state: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        reg = Registry(pool=state["pool"], bus=state["bus"], settings=settings, box=box)
        await rpc.serve(reg)
        await consumers.ensure_code_server(reg)
        state["stats_sources"].append(functools.partial(health.figures, reg))
        async with consumers.running(reg), health.running(reg), orgs.normalising(reg):
            yield {"registry": reg}

    routes = [
        *transfer.routes,  # /api/v1/servers/export before /api/v1/servers/{name}
        *catalog.routes,
        *servers.routes,
        *shares.routes,
        *tools.routes,
        *secrets.routes,
        *sources.routes,
        *config.routes,
        *pages.routes,  # the MCP Gateway Registry's GET / and GET /edit/{service_path}
    ]
    return build_app(settings, routes, migrations=MIGRATIONS_DIR, extra=extra)
