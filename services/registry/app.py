"""The registry service app."""

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
    secrets,
    servers,
    settings,
    shares,
    sources,
    tools,
    transfer,
)
from services.registry.settings import RegistrySettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(settings_: RegistrySettings) -> Starlette:
    """Build the registry app."""
    box = SecretBox.from_settings(
        settings_.master_keys, settings_.master_key, settings_.master_key_id
    )

    @asynccontextmanager
    async def extra(state: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        reg = Registry(pool=state["pool"], bus=state["bus"], settings=settings_, box=box)
        await rpc.serve(reg)
        await consumers.ensure_code_server(reg)
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
        *settings.routes,
    ]
    return build_app(settings_, routes, migrations=MIGRATIONS_DIR, extra=extra)
