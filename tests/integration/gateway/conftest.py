"""Gateway test fixtures: the real registry, real upstream MCP servers, the gateway's core parts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from libs.common.authn import Grant, Principal
from libs.common.outbound import Resolve
from libs.devstack.harness import until
from services.gateway.call_context import CallContext
from services.gateway.clients.sessions import Notifier
from services.gateway.protocol import Gateway
from services.gateway.registry_sync import RegistrySync
from services.gateway.routing_table import RoutingTable
from services.gateway.settings import GatewaySettings
from services.gateway.upstreams.pool import UpstreamPool
from services.registry import refresh, servers
from services.registry.app import create_app as create_registry
from services.registry.context import Registry
from services.registry.schemas import ServerCreate
from tests.support import package_isolation, serving, settings_for
from tests.support.events import Events, collecting
from tests.support.registry import registry_parts, registry_settings
from tests.support.sse import stream_messages

LIVE_STACKS: list[Stack] = []  # the package's `stack`, once a test has started it

ADMIN = Principal(kind="user", id="u-admin", name="admin", platform_role="platform_admin")
# the org `register` puts servers in, and the org of `member`'s teams (docs/TENANCY.md)
TEST_ORG = "org-gateway-tests"
SERVER_IDS: dict[str, str] = {}  # name → id of each server `register` made


def member(*grants: tuple[str, str, set[str]], teams: tuple[str, ...] = ("team-a",)) -> Principal:
    """A user of TEST_ORG whose teams hold the given (team, server, permissions) grants.

    The grants are bound to the servers `register` made (register them first)."""
    return Principal(
        kind="api_key",
        id="u-member",
        name="member",
        orgs={TEST_ORG: "member"},
        teams=teams,
        team_orgs=tuple((TEST_ORG, team) for team in teams),
        credential_id="key-1",
        org=TEST_ORG,
        grants=tuple(
            Grant(team, server, frozenset(perms), None, SERVER_IDS.get(server), TEST_ORG)
            for team, server, perms in grants
        ),
    )


def calculator(name: str = "calc") -> MCPServer:
    """An upstream with arithmetic tools, one slow and one that reports progress."""
    server = MCPServer(name)

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Echo a text back.")
    def echo(text: str) -> str:
        return text

    @server.tool(description="Return a large text of n characters.")
    def big(n: int) -> str:
        return "x" * n

    @server.tool(description="Sleep then answer.")
    async def slow(seconds: float) -> str:
        await asyncio.sleep(seconds)
        return "done"

    return server


# this package runs in a NATS namespace and a database of its own
namespace, pg_url = package_isolation("gat")


@pytest.fixture(scope="package")
async def registry_url(pg_url: str, nats_url: str, namespace: str) -> AsyncIterator[str]:
    """A real registry app for the session."""
    async with serving(create_registry(registry_settings(pg_url, nats_url, namespace))) as url:
        yield url


@pytest.fixture(scope="package")
async def registry(
    registry_url: str, pg_url: str, nats_url: str, namespace: str
) -> AsyncIterator[Registry]:
    """The registry's logic on our own pool and bus (its app: `registry_url`)."""
    settings = registry_settings(pg_url, nats_url, namespace)
    async with registry_parts(settings, "gateway-test-registry") as parts:
        yield parts


@pytest.fixture(autouse=True)
async def clean_registry(registry: Registry) -> AsyncIterator[None]:
    """Every test starts without user servers.

    They are deleted through the registry's logic, and the package's gateway (`stack`, which
    outlives tests) has dropped them before the test registers a server of the same name: a
    stale entry would otherwise answer the test's wait, and its calls would go to the previous
    test's (stopped) upstream."""
    gone: list[str] = []
    async with registry.pool.acquire() as conn:
        for row in await conn.fetch("SELECT * FROM registry.servers WHERE name <> 'code'"):
            async with conn.transaction():
                await servers.delete(registry, conn, row, "test")
            gone.append(row["name"])

    async def relayed() -> bool:
        return not await registry.pool.fetchval("SELECT count(*) FROM registry.outbox")

    await until(relayed, timeout=5, interval=0.01, what="the registry's outbox relayed")
    for stack in LIVE_STACKS if gone else ():
        await stack.wait_until_gone(gone)
    yield


async def register(registry: Registry, name: str, url: str, **extra: Any) -> Any:
    """Register and discover a server of `org` (default TEST_ORG) through the registry's logic."""
    org = extra.pop("org", TEST_ORG)
    body = ServerCreate(
        name=name, transport=extra.pop("transport", "streamable-http"), url=url, **extra
    )
    async with registry.pool.acquire() as conn, conn.transaction():
        server = await servers.create(registry, conn, body, org, "test")
    SERVER_IDS[name] = str(server["id"])
    await refresh.refresh(registry, server["id"], "test")
    return server


@dataclass
class Core:
    """The gateway's parts, wired as the app wires them."""

    settings: GatewaySettings
    table: RoutingTable
    pool: UpstreamPool
    gateway: Gateway
    sync: RegistrySync
    notifier: Notifier

    async def call(self, principal: Principal, method: str, params: dict, **ctx: Any) -> Any:
        """One MCP request through the gateway core."""
        return await self.gateway.handle(method, params, CallContext(principal, **ctx))

    async def wait_for_tool(self, name: str, present: bool = True) -> None:
        """Wait until the routing table has (or lacks) a tool."""
        await until(
            lambda: (name in self.table.by_public) == present,
            timeout=5,
            interval=0.02,
            what=f"{name} {'in' if present else 'out of'} the routing table",
        )


@pytest.fixture
async def core_factory(
    registry: Registry, pg_url: str, nats_url: str, namespace: str
) -> AsyncIterator[Callable[..., Any]]:
    """Build a gateway core with settings overrides; each is loaded from the real registry."""
    made: list[Core] = []
    # the registry's bus outlives each test: a core left following its events would go on
    # refetching (and settling the heap) through every later test of the package
    follows: list[Any] = []

    async def make(resolve: Resolve | None = None, **env: Any) -> Core:
        """A core with settings overrides (`resolve`: the DNS its outbound guard asks)."""
        settings = settings_for(
            GatewaySettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace, **env
        )
        table = RoutingTable(settings.separator)
        pool = UpstreamPool(settings, registry.bus, resolve=resolve)
        await pool.start()
        notifier = Notifier()
        sync = RegistrySync(
            registry.bus, table, pool, notifier.tools_changed, settings.resync_s, settings.gc_freeze
        )
        follows.append(await registry.bus.follow("events.registry.>", sync.on_event))
        await sync.load()
        core = Core(
            settings, table, pool, Gateway(settings, table, pool, registry.bus), sync, notifier
        )
        made.append(core)
        return core

    yield make
    for sub in follows:
        await sub.unsubscribe()
    for core in made:
        core.sync.heap.cancel()
        await core.pool.close()


@pytest.fixture
async def calls(nats_url: str, namespace: str) -> AsyncIterator[Events]:
    """gateway.tool.called events of one test."""
    async with collecting(nats_url, f"{namespace}.events.gateway.tool.called") as box:
        yield box


@dataclass
class Stack:
    """The gateway app served over HTTP, with the real auth service and registry behind it."""

    url: str
    auth: Any
    admin: str  # the platform admin's JWT

    async def wait_for_tool(self, http: Any, name: str, token: str | None = None) -> None:
        """Poll tools/list (modern, stateless) until `name` is listed."""

        async def listed() -> bool:
            return name in [t["name"] for t in await self.list_tools(http, token)]

        await until(listed, timeout=5, what=f"{name} in tools/list")

    async def wait_until_gone(self, servers: list[str]) -> None:
        """Poll tools/list (as the admin) until no tool of `servers` is listed."""
        prefixes = tuple(f"{name}__" for name in servers)
        async with httpx.AsyncClient(timeout=5) as http:

            async def gone() -> bool:
                return not any(t["name"].startswith(prefixes) for t in await self.list_tools(http))

            await until(gone, timeout=5, interval=0.02, what=f"the tools of {servers} gone")

    async def list_tools(self, http: Any, token: str | None = None) -> list[dict[str, Any]]:
        """One stateless tools/list."""
        resp = await http.post(
            f"{self.url}/mcp",
            json=modern_body("tools/list", {}),
            headers={**modern_headers("tools/list"), **bearer(token or self.admin)},
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["result"]["tools"]


def bearer(token: str) -> dict[str, str]:
    """The Authorization header."""
    return {"Authorization": f"Bearer {token}"}


MODERN = "2026-07-28"


def modern_body(method: str, params: dict[str, Any], rid: int = 1) -> dict[str, Any]:
    """A 2026-07-28 request with its per-request envelope."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    }
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": {**params, "_meta": meta}}


def modern_headers(method: str, name: str | None = None) -> dict[str, str]:
    """The routing headers of a 2026-07-28 request."""
    headers = {
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
        "Accept": "application/json, text/event-stream",
    }
    if name is not None:
        headers["Mcp-Name"] = name
    return headers


@pytest.fixture(scope="package")
async def stack(
    registry: Registry, registry_url: str, pg_url: str, nats_url: str, namespace: str
) -> AsyncIterator[Stack]:
    """The real auth service, the registry (above) and the gateway app on a port."""
    from services.gateway.app import create_app
    from tests.support.auth import auth_service

    async with auth_service(pg_url, nats_url, namespace) as auth:
        auth.registry_url = registry_url
        settings = settings_for(
            GatewaySettings,
            pg_url=pg_url,
            nats_url=nats_url,
            namespace=namespace,
            GATEWAY_MAX_RESULT_BYTES=100_000,
            SWITCHBOARD_MAX_BODY_BYTES=200_000,
        )
        async with serving(create_app(settings)) as url:
            stack = Stack(url=url, auth=auth, admin=await auth.admin_token())
            LIVE_STACKS.append(stack)
            try:
                yield stack
            finally:
                LIVE_STACKS.remove(stack)


@pytest.fixture
async def replica_b(stack: Stack, pg_url: str, nats_url: str, namespace: str) -> AsyncIterator[str]:
    """A second gateway replica beside `stack`, on the same NATS namespace.

    It shares the session secret, the relay subjects and the registry events."""
    from services.gateway.app import create_app

    settings = settings_for(GatewaySettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace)
    async with serving(create_app(settings)) as url:
        yield url


async def first_update(stream: Any, timeout: float = 5) -> dict[str, Any] | None:
    """The first `notifications/resources/updated` on an SSE response (httpx stream)."""
    async with asyncio.timeout(timeout):
        async for message in stream_messages(stream):
            if message.get("method") == "notifications/resources/updated":
                return message
    return None
