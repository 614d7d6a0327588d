"""Registry test fixtures: the registry app, its shared parts, and real upstream MCP servers."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from libs.devstack.harness import free_port, serving
from libs.devstack.harness.registry import MASTER_KEY, registry_parts, registry_settings
from services.registry.app import create_app
from services.registry.context import Registry
from services.registry.settings import RegistrySettings
from tests.support import package_isolation
from tests.support.events import Events, collecting
from tests.support.registry import delete_user_servers
from tests.support.upstreams import LOCAL, Upstream, make_upstream, run_upstream

# the gateway's and e2e tests import these from here
__all__ = ["LOCAL", "MASTER_KEY", "Upstream", "make_upstream", "registry_settings", "run_upstream"]


# this package runs in a NATS namespace and a database of its own
namespace, pg_url = package_isolation("reg")


@pytest.fixture(scope="package")
async def registry_settings_(pg_url: str, nats_url: str, namespace: str) -> RegistrySettings:
    """The settings of the session's registry."""
    # the catalog's tests add versions from local git repositories (no network)
    return registry_settings(pg_url, nats_url, namespace, REGISTRY_CATALOG_ALLOW_LOCAL_GIT="true")


@pytest.fixture(scope="package")
async def registry_url(registry_settings_: RegistrySettings) -> AsyncIterator[str]:
    """A registry running in-process for the whole session (migrations applied)."""
    async with serving(create_app(registry_settings_)) as url:
        yield url


@pytest.fixture(scope="package")
async def reg(registry_url: str, registry_settings_: RegistrySettings) -> AsyncIterator[Registry]:
    """The registry's shared parts on a pool and bus of our own, for calling its logic directly."""
    async with registry_parts(registry_settings_, "registry-test") as parts:
        yield parts


@pytest.fixture(autouse=True)
async def clean(reg: Registry) -> AsyncIterator[None]:
    """Every test starts without user servers and settings."""
    await delete_user_servers(reg.pool)
    async with reg.pool.acquire() as conn:
        await conn.execute("DELETE FROM registry.settings")
    yield


@pytest.fixture
async def events(nats_url: str, namespace: str) -> AsyncIterator[Events]:
    """Collect events.registry.> for one test."""
    async with collecting(nats_url, f"{namespace}.events.registry.>") as box:
        yield box


@pytest.fixture
async def anon(registry_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client with an address of its own (X-Real-IP from the trusted loopback)."""
    ip = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    async with httpx.AsyncClient(
        base_url=registry_url, headers={"X-Real-IP": ip}, timeout=20
    ) as client:
        yield client


@pytest.fixture
def upstream() -> Upstream:
    """run_upstream as a fixture."""
    return run_upstream


@pytest.fixture
def port() -> int:
    """A free port."""
    return free_port()


async def server_row(pool: asyncpg.Pool, name: str) -> asyncpg.Record:
    """A server's row (test helper)."""
    async with pool.acquire() as conn:
        return await conn.fetchrow("SELECT * FROM registry.servers WHERE name = $1", name)


@pytest.fixture(scope="package")
async def auth(pg_url: str, nats_url: str, namespace: str, registry_url: str) -> AsyncIterator[Any]:
    """The real auth service for this session (its grants name this registry's servers)."""
    from tests.support.auth import auth_service

    async with auth_service(pg_url, nats_url, namespace) as client:
        client.registry_url = registry_url
        yield client


@pytest.fixture(scope="package")
async def admin_token(auth: Any) -> str:
    """A platform admin's JWT."""
    return await auth.admin_token()


@pytest.fixture
async def api(registry_url: str, admin_token: str) -> AsyncIterator[Any]:
    """An HTTP client of the registry as the platform admin."""
    import httpx

    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=registry_url, headers=headers, timeout=20) as client:
        yield client
