"""Postgres refuses what a service's SQL should never do.

Each service's own role (created by libs/devstack/pgroles.py, as `make run` and the test stacks
do) owns its schema and nothing else."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from libs.common import migrate
from libs.common.bus_access import SERVICES
from libs.devstack import pgroles, postgres
from libs.devstack.pgroles import ServiceRoles

ROOT = Path(__file__).parents[3]


async def migrate_as(url: str, service: str) -> None:
    """Apply the service's migrations as it does at start, with its own role."""
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:
        await migrate.apply(
            pool, schema=service, directory=ROOT / "services" / service / "migrations"
        )
    finally:
        await pool.close()


@pytest.fixture(scope="module")
async def roles(pg_server: postgres.Postgres) -> AsyncIterator[ServiceRoles]:
    """A fresh database with the five roles, each service's migrations applied as its role."""
    database = f"sbroles_{secrets.token_hex(4)}"
    admin_url = await postgres.create_database(pg_server.url, database)
    try:
        made = await pgroles.ensure_roles(admin_url, pgroles.new_passwords())
        for service in SERVICES:
            await migrate_as(made.urls[service], service)
        yield made
    finally:
        await postgres.drop_database(pg_server.url, database)
        await pgroles.drop_roles(pg_server.url, database)


async def connect_as(roles: ServiceRoles, service: str) -> asyncpg.Connection:
    """A connection with the service's role."""
    return await asyncpg.connect(roles.urls[service])


async def test_the_gateways_role_cannot_read_the_registrys_secrets(roles: ServiceRoles) -> None:
    conn = await connect_as(roles, "gateway")
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("SELECT * FROM registry.secrets")
        # its own schema it reads and writes
        await conn.execute(
            "INSERT INTO gateway.outbox (event_id, subject, payload) VALUES ($1, 'x', '')",
            uuid.uuid4(),
        )
        assert await conn.fetchval("SELECT count(*) FROM gateway.outbox") == 1
    finally:
        await conn.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_no_service_role_reads_or_writes_another_services_schema(
    roles: ServiceRoles, service: str
) -> None:
    conn = await connect_as(roles, service)
    try:
        for other in SERVICES:
            if other == service:
                continue
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"SELECT * FROM {other}.outbox")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"DELETE FROM {other}.processed_events")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"CREATE TABLE {other}.planted (id int)")
    finally:
        await conn.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_role_creates_nothing_outside_its_schema_and_is_no_admin(
    roles: ServiceRoles, service: str
) -> None:
    conn = await connect_as(roles, service)
    try:
        attrs = await conn.fetchrow(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
            " FROM pg_roles WHERE rolname = current_user"
        )
        assert not any(attrs.values())
        for statement in (
            "CREATE TABLE public.planted (id int)",
            "CREATE SCHEMA planted",
            "CREATE TEMP TABLE planted (id int)",
            f"CREATE ROLE planted_{secrets.token_hex(3)}",
            f"CREATE DATABASE planted_{secrets.token_hex(3)}",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        owner = await conn.fetchval(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1", service
        )
        assert owner == roles.roles[service]
    finally:
        await conn.close()


async def test_roles_are_created_again_idempotently_and_take_over_what_the_admin_made(
    pg_server: postgres.Postgres,
) -> None:
    """A database the services used as the admin before (as `make run` did) is handed over."""
    database = f"sbroles_{secrets.token_hex(4)}"
    admin_url = await postgres.create_database(pg_server.url, database)
    try:
        await migrate_as(admin_url, "registry")  # the schema and tables, owned by the admin
        passwords = pgroles.new_passwords()
        await pgroles.ensure_roles(admin_url, passwords)
        again = await pgroles.ensure_roles(admin_url, passwords)
        await migrate_as(again.urls["registry"], "registry")
        conn = await asyncpg.connect(again.urls["registry"])
        try:
            await conn.execute("DELETE FROM registry.servers")
            stray = await conn.fetchval(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'registry' AND c.relowner <> "
                "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
            )
            assert stray == 0
        finally:
            await conn.close()
    finally:
        await postgres.drop_database(pg_server.url, database)
        await pgroles.drop_roles(pg_server.url, database)
