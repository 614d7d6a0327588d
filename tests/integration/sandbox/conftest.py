"""Sandbox test fixtures: real auth, registry and sandbox apps in-process, and an event tap."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
import pytest

from libs.common import bus as busmod
from libs.common.bus import Bus
from services.registry.app import create_app as create_registry
from services.registry.settings import RegistrySettings
from services.sandbox.app import create_app as create_sandbox
from services.sandbox.settings import SandboxSettings
from tests.support import node, package_isolation, serving, settings_for
from tests.support.auth import AuthClient, auth_service
from tests.support.registry import MASTER_KEY

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sandbox"
OSV_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "osv"
SCAN_MAX_SOURCE_BYTES = 1_500_000  # a test source of 2 MB is refused; one of 700 KB takes 2 chunks
ECHO_SERVER = str(FIXTURES / "echo_server.py")
# in the system temp dir, which every sandbox uid can reach wherever the checkout lies (a work
# root below a 0700 directory is refused: test_layout.py)
WORK_ROOT = Path(tempfile.gettempdir()) / "switchboard-test-sandbox"
# the one loopback address test sandboxes may reach (SANDBOX_EGRESS_ALLOW_CIDRS): test upstreams
# listen there, while Postgres, NATS and the services (127.0.0.1) stay out of reach
ALLOWED_LOOPBACK = "127.0.0.2"
LOG_BYTES, LOG_LINE_BYTES = 1024 * 1024, 8192  # each server's log buffer, one line of it


# this package runs in a NATS namespace and a database of its own
namespace, pg_url = package_isolation("san")


@pytest.fixture(scope="package")
async def auth(
    pg_url: str, nats_url: str, namespace: str, registry: str
) -> AsyncIterator[AuthClient]:
    """The real auth service (its grants name the registry's servers)."""
    async with auth_service(pg_url, nats_url, namespace) as client:
        client.registry_url = registry
        yield client


@pytest.fixture(scope="package")
async def admin(auth: AuthClient) -> dict[str, str]:
    """Headers of the platform admin."""
    return auth.bearer(await auth.admin_token())


@pytest.fixture(scope="package")
async def registry(pg_url: str, nats_url: str, namespace: str) -> AsyncIterator[str]:
    """The real registry (servers and their decrypted specs come from it)."""
    settings = settings_for(
        RegistrySettings,
        pg_url=pg_url,
        nats_url=nats_url,
        namespace=namespace,
        # the database is shared with other tests' registries: one master key for all
        REGISTRY_MASTER_KEY=MASTER_KEY,
        REGISTRY_HEALTH_ENABLED="false",
        REGISTRY_SANDBOX_TIMEOUT_S="10",
        # the scanning tests read snapshots anonymously, more than 15 times a minute
        REGISTRY_CATALOG_ANON_PER_MIN="0",
    )
    async with serving(create_registry(settings)) as url:
        yield url


def sandbox_settings(pg_url: str, nats_url: str, namespace: str, **env: Any) -> SandboxSettings:
    """Sandbox settings for tests: fixtures mounted read-only, short idle and backoff."""
    work_root = WORK_ROOT / secrets.token_hex(4)
    base = {
        "SANDBOX_WORK_ROOT": str(work_root),
        "SANDBOX_RO_PATHS": f"{FIXTURES},{node.NODE_MODULES}",
        "SANDBOX_IDLE_TIMEOUT_S": "3",
        "SANDBOX_BACKOFF_BASE_S": "0.5",
        "SANDBOX_HEALTH_INTERVAL_S": "2",
        "SANDBOX_CALL_TIMEOUT_S": "15",
        "SANDBOX_EGRESS_ALLOW_CIDRS": f"{ALLOWED_LOOPBACK}/32",
        "SANDBOX_LOG_BYTES": str(LOG_BYTES),
        "SANDBOX_LOG_LINE_BYTES": str(LOG_LINE_BYTES),
        # a copy per sandbox, removed with its work root: a test may add one (test_modules.py)
        "OSV_ADVISORIES_PATH": str(shutil.copytree(OSV_FIXTURES, work_root / "osv")),
        "SANDBOX_SCAN_MAX_SOURCE_BYTES": str(SCAN_MAX_SOURCE_BYTES),
        "SANDBOX_SCAN_TIMEOUT_S": "60",
    }
    base.update(env)
    return settings_for(
        SandboxSettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace, **base
    )


@pytest.fixture(scope="package")
async def sandbox(
    pg_url: str, nats_url: str, namespace: str, auth: AuthClient, registry: str
) -> AsyncIterator[Any]:
    """The sandbox app under test (its state reachable as `sandbox.state`)."""
    settings = sandbox_settings(pg_url, nats_url, namespace)
    app = create_sandbox(settings)
    try:
        async with serving(app) as url:
            app.url = url  # type: ignore[attr-defined]
            yield app
    finally:
        shutil.rmtree(settings.work_root, ignore_errors=True)


@pytest.fixture(scope="package")
async def api(sandbox: Any) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client of the sandbox."""
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="package")
async def reg_api(registry: str) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client of the registry."""
    async with httpx.AsyncClient(base_url=registry, timeout=30) as client:
        yield client


@pytest.fixture(scope="package")
async def bus(pg_url: str, nats_url: str, namespace: str) -> AsyncIterator[Bus]:
    """A bus of our own in the test namespace, for RPC calls like the gateway makes."""
    settings = sandbox_settings(pg_url, nats_url, namespace)
    async with busmod.connect(settings, name="sandbox-test") as connected:
        yield connected


class EventTap:
    """Every sandbox event published in the namespace, for asserting on."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def on(self, data: bytes) -> None:
        """Record one event."""
        self.events.append(orjson.loads(data))
        self.changed.set()

    async def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        """The first event (already seen or coming) that matches."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if pred(event):
                        return event
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture(scope="package")
async def events(nats_url: str, namespace: str) -> AsyncIterator[EventTap]:
    """A core-NATS tap on events.sandbox.> (JetStream publishes reach core subscribers too)."""
    tap = EventTap()
    client = await nats.connect(nats_url)

    async def cb(msg: Any) -> None:
        tap.on(msg.data)

    await client.subscribe(f"{namespace}.events.sandbox.>", cb=cb)
    await client.flush()
    yield tap
    await client.close()


async def register_stdio(
    reg_api: httpx.AsyncClient, admin: dict[str, str], name: str, **fields: Any
) -> dict[str, Any]:
    """Register the echo fixture as a stdio server in the real registry."""
    body = {
        "name": name,
        "transport": "stdio",
        "command": "python3",
        "args": [ECHO_SERVER],
        **fields,
    }
    resp = await reg_api.post("/api/v1/servers", json=body, headers=admin)
    assert resp.status_code == 201, resp.text
    return resp.json()


def unique_name(prefix: str = "echo") -> str:
    """A server name no other test uses."""
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture(scope="package")
def server_everything() -> Path:
    """`@modelcontextprotocol/server-everything` from the pinned npm test peers."""
    node.installed()
    return node.SERVER_EVERYTHING
