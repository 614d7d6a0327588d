"""Registry test fixtures: the registry app, its shared parts, and real upstream MCP servers."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
import nats
import pytest
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from libs.common import bus as busmod
from libs.common import db
from libs.common.events import Event
from services.registry.app import create_app
from services.registry.context import Registry
from services.registry.crypto import SecretBox
from services.registry.settings import RegistrySettings
from tests.support import free_port, serving, settings_for

MASTER_KEY = base64.b64encode(os.urandom(32)).decode()
LOCAL = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["127.0.0.1:*", "localhost:*"],
    allowed_origins=["http://127.0.0.1:*", "http://localhost:*"],
)


def registry_settings(pg_url: str, nats_url: str, namespace: str, **env: Any) -> RegistrySettings:
    """Registry settings for tests: 127.0.0.0/8 allowed, health loop off unless asked."""
    base = {
        "REGISTRY_MASTER_KEY": MASTER_KEY,
        "REGISTRY_SSRF_ALLOWLIST": "127.0.0.0/8",
        "REGISTRY_HEALTH_ENABLED": "false",
        "REGISTRY_DISCOVERY_TIMEOUT_S": "5",
        "REGISTRY_SANDBOX_TIMEOUT_S": "0.5",
    }
    base.update(env)
    return settings_for(
        RegistrySettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace, **base
    )


@pytest.fixture(scope="session")
async def registry_settings_(pg_url: str, nats_url: str, namespace: str) -> RegistrySettings:
    """The settings of the session's registry."""
    return registry_settings(pg_url, nats_url, namespace)


@pytest.fixture(scope="session")
async def registry_url(registry_settings_: RegistrySettings) -> AsyncIterator[str]:
    """A registry running in-process for the whole session (migrations applied)."""
    async with serving(create_app(registry_settings_)) as url:
        yield url


@pytest.fixture(scope="session")
async def reg(registry_url: str, registry_settings_: RegistrySettings) -> AsyncIterator[Registry]:
    """The registry's shared parts on a pool and bus of our own, for calling its logic directly."""
    async with (
        db.open_pool(registry_settings_) as pool,
        busmod.connect(registry_settings_, name="registry-test") as bus,
    ):
        yield Registry(
            pool=pool,
            bus=bus,
            settings=registry_settings_,
            box=SecretBox.from_base64(MASTER_KEY, "k1"),
        )


@pytest.fixture(autouse=True)
async def clean(reg: Registry) -> AsyncIterator[None]:
    """Every test starts without user servers and settings."""
    async with reg.pool.acquire() as conn:
        await conn.execute("DELETE FROM registry.servers WHERE name <> 'code'")
        await conn.execute("DELETE FROM registry.settings")
    yield


class Events:
    """Registry events received on core NATS (JetStream publishes reach core subscribers too)."""

    def __init__(self) -> None:
        self.items: list[Event] = []
        self.arrived = asyncio.Condition()

    async def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 5) -> Event:
        """The first event (already seen or arriving) that matches."""
        async with asyncio.timeout(timeout), self.arrived:
            while True:
                for event in self.items:
                    if predicate(event):
                        return event
                await self.arrived.wait()


@pytest.fixture
async def events(nats_url: str, namespace: str) -> AsyncIterator[Events]:
    """Collect events.registry.> for one test."""
    box = Events()
    nc = await nats.connect(nats_url)

    async def on_msg(msg: Any) -> None:
        async with box.arrived:
            box.items.append(Event.from_bytes(msg.data))
            box.arrived.notify_all()

    await nc.subscribe(f"{namespace}.events.registry.>", cb=on_msg)
    yield box
    await nc.close()


def make_upstream(name: str = "weather") -> MCPServer:
    """An MCP server with two tools, a resource and a prompt."""
    server = MCPServer(name)

    @server.tool(description="Current temperature in a city.")
    def temperature(city: str) -> str:
        return f"21C in {city}"

    @server.tool(description="Forecast for the next days.")
    def forecast(city: str, days: int = 3) -> str:
        return f"sunny for {days} days in {city}"

    @server.resource("weather://stations")
    def stations() -> str:
        return "a,b,c"

    @server.prompt()
    def ask_weather(city: str) -> str:
        return f"What is the weather in {city}?"

    return server


@asynccontextmanager
async def run_upstream(
    server: MCPServer, transport: str = "streamable-http", port: int | None = None
) -> AsyncIterator[str]:
    """Serve `server` over Streamable HTTP (/mcp) or SSE (/sse); yields its MCP URL."""
    if transport == "sse":
        app = server.sse_app(transport_security=LOCAL)
        path = "/sse"
    else:
        app = server.streamable_http_app(transport_security=LOCAL)
        path = "/mcp"
    async with serving(app, port=port) as base:
        yield base + path


Upstream = Callable[..., AbstractAsyncContextManager[str]]


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


@pytest.fixture(scope="session")
async def auth(pg_url: str, nats_url: str, namespace: str) -> AsyncIterator[Any]:
    """The real auth service for this session."""
    from tests.support.auth import auth_service

    async with auth_service(pg_url, nats_url, namespace) as client:
        yield client


@pytest.fixture(scope="session")
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
