"""Fixtures for the audit service: its settings, a running app, a pool and a publisher."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from libs.common import bus as busmod
from libs.common import db, migrate
from services.audit.app import MIGRATIONS_DIR, create_app
from services.audit.settings import AuditSettings
from tests.support import serving, settings_for

TABLES = (
    "tool_calls",
    "call_rollups",
    "events",
    "server_status",
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
    }
    return settings_for(
        AuditSettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace, **(defaults | env)
    )


@pytest.fixture(scope="session")
def audit_settings(pg_url: str, nats_url: str, namespace: str) -> AuditSettings:
    """Settings of the shared audit app."""
    return audit_settings_for(pg_url, nats_url, namespace)


@pytest.fixture(scope="session")
async def audit_pool(audit_settings: AuditSettings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test database with the audit migrations applied."""
    async with db.open_pool(audit_settings) as pool:
        await migrate.apply(pool, schema="audit", directory=MIGRATIONS_DIR)
        yield pool


@pytest.fixture(scope="session")
async def audit_url(audit_settings: AuditSettings, audit_pool: asyncpg.Pool) -> AsyncIterator[str]:
    """The base URL of an audit app running for the whole session."""
    async with serving(create_app(audit_settings)) as url:
        yield url


@pytest.fixture(scope="session")
async def publisher(audit_settings: AuditSettings) -> AsyncIterator[busmod.Bus]:
    """A bus to publish events as another service would."""
    async with busmod.connect(audit_settings, name="audit-test-publisher") as bus:
        yield bus


@pytest.fixture
async def clean(audit_pool: asyncpg.Pool) -> None:
    """Empty the audit tables before a test."""
    async with audit_pool.acquire() as conn:
        await conn.execute(f"TRUNCATE {', '.join('audit.' + t for t in TABLES)} CASCADE")


@pytest.fixture
def fetchval(audit_pool: asyncpg.Pool) -> Callable[..., Awaitable[Any]]:
    """Run one query on the test database and return its value."""

    async def run(sql: str, *args: Any) -> Any:
        async with audit_pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    return run
