"""Fixtures for the audit service: its settings, a running app, a pool and a publisher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from nats.js.errors import NotFoundError

from libs.common import bus as busmod
from libs.common import db, migrate
from libs.devstack.harness import serving, settings_for, until
from libs.devstack.harness.registry import registry_settings
from services.audit.app import MIGRATIONS_DIR, create_app
from services.audit.consumers import DURABLE
from services.audit.settings import AuditSettings
from services.registry.app import create_app as create_registry
from tests.support import package_isolation
from tests.support.auth import AuthClient, User, auth_service

TABLES = (
    "tool_calls",
    "call_rollups",
    "events",
    "server_status",
    "servers",
    "settings",
    "alerts",
    "alert_rules",
)


def audit_settings_for(pg_url: str, nats_url: str, namespace: str, **env: Any) -> AuditSettings:
    """Audit settings for tests: fast loops, the given overrides."""
    defaults: dict[str, Any] = {
        "AUDIT_ALERT_INTERVAL_S": "0.5",
        "AUDIT_MONITORING_INTERVAL_S": "0.5",
        "AUDIT_HEALTH_INTERVAL_S": "0.5",
        "AUDIT_ACK_WAIT_S": "2",
        "AUDIT_SSRF_ALLOWLIST": "127.0.0.0/8",  # the webhook receivers listen on loopback
        "AUDIT_PLATFORM_METRICS_S": "0.5",
    }
    return settings_for(
        AuditSettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace, **(defaults | env)
    )


# this package runs in a NATS namespace and a database of its own
namespace, pg_url = package_isolation("aud")


@pytest.fixture(scope="package")
def audit_settings(pg_url: str, nats_url: str, namespace: str) -> AuditSettings:
    """Settings of the shared audit app."""
    return audit_settings_for(pg_url, nats_url, namespace)


@pytest.fixture(scope="package")
async def audit_pool(audit_settings: AuditSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test database with the audit migrations applied."""
    async with db.open_pool(audit_settings) as pool:
        await migrate.apply(pool, schema="audit", directory=MIGRATIONS_DIR)
        yield pool


@pytest.fixture(scope="package")
async def audit_url(audit_settings: AuditSettings, audit_pool: asyncpg.Pool) -> AsyncIterator[str]:
    """The base URL of an audit app running for the whole session."""
    async with serving(create_app(audit_settings)) as url:
        yield url


@pytest.fixture(scope="package")
async def publisher(audit_settings: AuditSettings) -> AsyncIterator[busmod.Bus]:
    """A bus to publish events as another service would."""
    async with busmod.connect(audit_settings, name="audit-test-publisher") as bus:
        yield bus


@pytest.fixture
async def clean(audit_pool: asyncpg.Pool, publisher: busmod.Bus) -> None:
    """Empty the audit tables before a test, once the audit app has stored earlier tests' events.

    Everything earlier tests published is stored first: a record stored after the truncation
    would count in this test."""
    await consumed(publisher)
    # the app's own jobs (rollups, alert rules) read these tables meanwhile; TRUNCATE locks them
    # one by one, so Postgres may end it as a deadlock's victim: it is then simply run again
    for attempt in range(5):
        try:
            async with audit_pool.acquire() as conn:
                await conn.execute(f"TRUNCATE {', '.join('audit.' + t for t in TABLES)} CASCADE")
            return
        except asyncpg.exceptions.DeadlockDetectedError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.05)


async def consumed(bus: busmod.Bus) -> None:
    """Wait until the audit consumer has nothing pending or unacknowledged (if it exists yet)."""

    async def idle() -> bool:
        try:
            info = await bus.js.consumer_info(bus.stream, DURABLE)
        except NotFoundError:
            return True
        return info.num_pending == 0 and info.num_ack_pending == 0

    await until(idle, timeout=15, what="the audit consumer to be idle")


@pytest.fixture
def fetchval(audit_pool: asyncpg.Pool) -> Callable[..., Awaitable[Any]]:
    """Run one query on the test database and return its value."""

    async def run(sql: str, *args: Any) -> Any:
        async with audit_pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    return run


@dataclass(frozen=True)
class People:
    """Real principals from the auth service: the admin, org admins, a member."""

    auth: AuthClient
    admin: str  # platform admin JWT
    org_a: dict[str, Any]
    org_b: dict[str, Any]
    alice: User  # admin of org A
    bob: User  # member of org A
    carol: User  # admin of org B


@pytest.fixture(scope="package")
async def auth(pg_url: str, nats_url: str, namespace: str) -> AsyncIterator[AuthClient]:
    """The real auth service, in-process on the session's namespace, beside the real registry.

    Grants name the registry's servers, and its events say whose each server is."""
    settings = registry_settings(pg_url, nats_url, namespace)
    async with (
        auth_service(pg_url, nats_url, namespace) as client,
        serving(create_registry(settings)) as registry_url,
    ):
        client.registry_url = registry_url
        yield client


@pytest.fixture(scope="package")
async def people(auth: AuthClient) -> People:
    """Two orgs with an admin each and a member in the first."""
    org_a = await auth.create_org()
    org_b = await auth.create_org()
    alice, bob, carol = [await auth.create_user() for _ in range(3)]
    await auth.add_org_member(org_a["id"], alice, "admin")
    await auth.add_org_member(org_a["id"], bob, "member")
    await auth.add_org_member(org_b["id"], carol, "admin")
    # log in again so the tokens' principals carry the memberships
    alice, bob, carol = [
        User(
            u.id, u.username, u.password, (await auth.login(u.username, u.password))["access_token"]
        )
        for u in (alice, bob, carol)
    ]
    return People(auth, await auth.admin_token(), org_a, org_b, alice, bob, carol)


@pytest.fixture
async def api(audit_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the shared audit app."""
    async with httpx.AsyncClient(base_url=audit_url, timeout=10) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for `token`."""
    return {"Authorization": f"Bearer {token}"}
