"""The Kubernetes db-setup Job's command (python -m libs.devstack.k8s_roles) on Postgres."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from libs.common import migrate
from libs.common.bus_access import SERVICES
from libs.devstack import pgroles, postgres

ROOT = Path(__file__).parents[3]


@pytest.fixture
async def admin_url(pg_server: postgres.Postgres) -> AsyncIterator[str]:
    """A fresh database, its admin URL; dropped with its roles afterwards."""
    database = f"sbk8s_{secrets.token_hex(4)}"
    url = await postgres.create_database(pg_server.url, database)
    try:
        yield url
    finally:
        await postgres.drop_database(pg_server.url, database)
        await pgroles.drop_roles(pg_server.url, database)


def service_urls(admin_url: str) -> dict[str, str]:
    """Each service's URL as the Secret switchboard-db holds it: its role, its password."""
    database = pgroles.database_of(admin_url)
    return {
        f"{s.upper()}_DATABASE_URL": pgroles.role_url(
            admin_url, pgroles.role_name(database, s), f"p@ss/{s}:{secrets.token_hex(4)}"
        )
        for s in SERVICES
    }


def job(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the Job's command with only the environment the Job gives it."""
    argv = [sys.executable, "-m", "libs.devstack.k8s_roles"]
    base = {"PATH": os.environ.get("PATH", "")}
    return subprocess.run(
        argv, env={**base, **env}, cwd=ROOT, capture_output=True, text=True, check=False
    )


async def test_each_service_then_migrates_and_reads_its_own_schema_with_its_url(
    admin_url: str,
) -> None:
    urls = service_urls(admin_url)
    for _ in range(2):  # once more, as a re-run of the Job does
        result = job({"DATABASE_URL": admin_url, **urls})
        assert result.returncode == 0, result.stderr
    for service in SERVICES:
        pool = await asyncpg.create_pool(
            urls[f"{service.upper()}_DATABASE_URL"], min_size=1, max_size=1
        )
        try:
            directory = ROOT / "services" / service / "migrations"
            await migrate.apply(pool, schema=service, directory=directory)
            async with pool.acquire() as conn:
                assert await conn.fetchval(f'SELECT count(*) FROM "{service}".schema_migrations')
                other = "audit" if service != "audit" else "auth"
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.fetch(f'SELECT * FROM "{other}".schema_migrations')
        finally:
            await pool.close()


async def test_a_missing_url_or_admin_fails_without_creating_anything(admin_url: str) -> None:
    urls = service_urls(admin_url)
    del urls["AUDIT_DATABASE_URL"]
    result = job({"DATABASE_URL": admin_url, **urls})
    assert result.returncode != 0 and "AUDIT_DATABASE_URL" in result.stderr
    assert job(service_urls(admin_url)).returncode == 2
    conn = await asyncpg.connect(admin_url)
    try:
        role = pgroles.role_name(pgroles.database_of(admin_url), "auth")
        assert await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role) is None
    finally:
        await conn.close()
