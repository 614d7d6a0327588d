"""One Postgres login role per service, owning its own schema and nothing else.

`ensure_roles` runs as the admin role (a superuser) on the platform's database before the
services start, and may run again at every start: it creates or updates each role
(`<database>_<service>`: no superuser, no CREATEDB, no CREATEROLE, no replication, no RLS
bypass), lets it connect to this database only, makes it the owner of its schema and of
everything already in it, and takes every right on the `public` schema and the database from
PUBLIC. A service's SQL then cannot read or write another service's schema.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from libs.common.bus_access import SERVICES
from libs.devstack import devsecrets

ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
# roles granted pg_monitor: audit exports the server's statistics (every role's sessions)
MONITORS = ("audit",)
# relations whose owner is changed one by one (sequences of a column follow their table)
RELATION_KINDS = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW",
                  "f": "FOREIGN TABLE", "S": "SEQUENCE"}  # fmt: skip


class RolesUnavailable(RuntimeError):
    """The admin role may not create roles; the message says why."""


@dataclass(frozen=True)
class ServiceRoles:
    """Each service's role and the URL it connects with."""

    database: str
    roles: dict[str, str]  # service → role name
    urls: dict[str, str] = field(repr=False)  # service → URL with the role's password

    def service_env(self, service: str) -> dict[str, str]:
        """The variable one service reads its database URL from."""
        return {f"{service.upper()}_DATABASE_URL": self.urls[service]}

    def all_env(self) -> dict[str, str]:
        """Every service's variable (services read only their own)."""
        return {k: v for s in self.urls for k, v in self.service_env(s).items()}


def role_name(database: str, service: str) -> str:
    """The service's role for one database (roles are server-wide; databases are not)."""
    return f"{database}_{service}"[:63]


def role_url(admin_url: str, role: str, password: str) -> str:
    """admin_url's server and database, as role."""
    parts = urlsplit(admin_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(role, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def database_of(url: str) -> str:
    """The database a URL names."""
    return urlsplit(url).path.lstrip("/") or "postgres"


def new_passwords() -> dict[str, str]:
    """A random password per service."""
    return {s: secrets.token_urlsafe(24) for s in SERVICES}


def stored_passwords(path: Path) -> dict[str, str]:
    """The passwords in a credentials file ensure_roles' URLs were saved to, new where missing."""
    stored = devsecrets.read(path)
    passwords = new_passwords()
    for service in SERVICES:
        url = stored.get(f"{service.upper()}_DATABASE_URL")
        if url and urlsplit(url).password:
            passwords[service] = urlsplit(url).password or passwords[service]
    return passwords


async def ensure_roles(
    admin_url: str, passwords: dict[str, str], services: tuple[str, ...] = SERVICES
) -> ServiceRoles:
    """Create or update the services' roles on admin_url's database; return their URLs."""
    database = database_of(admin_url)
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        if not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            user = await conn.fetchval("SELECT current_user")
            raise RolesUnavailable(f"{user} is not a superuser, so it cannot create the roles")
        # the passwords below must not reach the server's statement log
        with contextlib.suppress(asyncpg.PostgresError):
            await conn.execute("SET log_statement = 'none'")
        roles = {s: role_name(database, s) for s in services}
        async with conn.transaction():
            # one bootstrap at a time per server (two `make run`s, two test workers)
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('switchboard-roles'))")
            await _ddl(conn, "REVOKE ALL ON DATABASE %I FROM PUBLIC", database)
            await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            for service, role in roles.items():
                await _ensure_role(conn, role, passwords[service])
                await _ddl(conn, "GRANT CONNECT ON DATABASE %I TO %I", database, role)
                await _own_schema(conn, service, role)
                if service in MONITORS:
                    await _ddl(conn, "GRANT pg_monitor TO %I", role)
    finally:
        await conn.close()
    urls = {s: role_url(admin_url, r, passwords[s]) for s, r in roles.items()}
    return ServiceRoles(database, roles, urls)


async def drop_roles(server_url: str, database: str) -> None:
    """Drop a database's service roles (after the database itself was dropped)."""
    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        for service in SERVICES:
            await _ddl(conn, "DROP ROLE IF EXISTS %I", role_name(database, service))
    finally:
        await conn.close()


async def drop_orphan_roles(server_url: str, database_prefix: str) -> None:
    """Drop the service roles of databases named `<database_prefix>…` that are gone.

    Such databases belong to a test run that was killed before its teardown."""
    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        names = await conn.fetch(
            "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", database_prefix
        )
        existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        for row in names:
            database, _, service = row["rolname"].rpartition("_")
            if service in SERVICES and database not in existing:
                with contextlib.suppress(asyncpg.PostgresError):  # another run's, in use
                    await _ddl(conn, "DROP ROLE IF EXISTS %I", row["rolname"])
    finally:
        await conn.close()


async def _ddl(conn: asyncpg.Connection, template: str, *values: str) -> None:
    """Run a statement whose names and literals are quoted by Postgres's format()."""
    params = "".join(f", ${i}::text" for i in range(2, len(values) + 2))
    await conn.execute(await conn.fetchval(f"SELECT format($1::text{params})", template, *values))


async def _ensure_role(conn: asyncpg.Connection, role: str, password: str) -> None:
    """Create the role, or bring an existing one back to exactly these attributes."""
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        await _ddl(conn, "CREATE ROLE %I", role)
    await _ddl(conn, f"ALTER ROLE %I WITH {ATTRIBUTES} PASSWORD %L", role, password)


async def _own_schema(conn: asyncpg.Connection, schema: str, role: str) -> None:
    """Give role its schema and everything in it (objects an earlier superuser run created)."""
    if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema):
        await _ddl(conn, "ALTER SCHEMA %I OWNER TO %I", schema, role)
    else:
        await _ddl(conn, "CREATE SCHEMA %I AUTHORIZATION %I", schema, role)
    await _ddl(conn, "REVOKE ALL ON SCHEMA %I FROM PUBLIC", schema)
    # tables first: a column's sequence follows its table, and may not be moved alone
    for kinds in (("r", "p", "v", "m", "f"), ("S",)):
        rows = await conn.fetch(
            "SELECT c.relname, c.relkind::text AS relkind FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind::text = ANY($2::text[])"
            " AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = $3)",
            schema,
            list(kinds),
            role,
        )
        for row in rows:
            kind = RELATION_KINDS[row["relkind"]]
            await _ddl(conn, f"ALTER {kind} %I.%I OWNER TO %I", schema, row["relname"], role)
    functions = await conn.fetch(
        "SELECT p.oid::regprocedure::text AS signature FROM pg_proc p"
        " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1"
        " AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = $2)",
        schema,
        role,
    )
    for row in functions:
        await _ddl(conn, "ALTER ROUTINE %s OWNER TO %I", row["signature"], role)
    types = await conn.fetch(
        "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace"
        " WHERE n.nspname = $1 AND t.typtype IN ('e', 'd', 'r') AND t.typelem = 0"
        " AND t.typowner <> (SELECT oid FROM pg_roles WHERE rolname = $2)",
        schema,
        role,
    )
    for row in types:
        await _ddl(conn, "ALTER TYPE %I.%I OWNER TO %I", schema, row["typname"], role)
