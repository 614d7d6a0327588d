"""The registry service app."""

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from libs.common.app import build_app
from services.registry import consumers, health, orgs, plans, reports, rpc
from services.registry.catalog import scans
from services.registry.catalog.rate import AnonymousLimit
from services.registry.context import Registry
from services.registry.crypto import SecretBox
from services.registry.routes import (
    catalog,
    catalog_admin,
    config,
    pages,
    policies,
    secrets,
    servers,
    shares,
    snapshots,
    sources,
    tools,
    transfer,
)
from services.registry.routes import mcps as mcp_routes
from services.registry.routes import reports as report_routes
from services.registry.routes import subregistry as subregistry_routes
from services.registry.routes import webhooks as webhook_routes
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
        catalog_limit = AnonymousLimit(reg.bus, settings)
        await catalog_limit.start()
        state["stats_sources"].append(functools.partial(health.figures, reg))
        async with consumers.running(reg), health.running(reg), orgs.normalising(reg):
            async with reports.running(reg), plans.following(reg), scans.running(reg):
                yield {"registry": reg, "catalog_limit": catalog_limit}

    routes = [
        *transfer.routes,  # /api/v1/servers/export before /api/v1/servers/{name}
        *catalog.routes,
        *mcp_routes.routes,
        *catalog_admin.routes,
        *subregistry_routes.routes,
        *servers.routes,
        *shares.routes,
        *tools.routes,
        *secrets.routes,
        *sources.routes,
        *config.routes,
        *policies.routes,
        *report_routes.routes,
        *webhook_routes.routes,
        *snapshots.routes,
        *pages.routes,  # the MCP Gateway Registry's GET / and GET /edit/{service_path}
    ]
    # tarball uploads may be larger than the platform's body cap, up to the catalog's limit
    limits = {mcp_routes.UPLOAD_PATH: mcp_routes.upload_limit(settings)}
    return build_app(settings, routes, migrations=MIGRATIONS_DIR, extra=extra, body_limits=limits)
