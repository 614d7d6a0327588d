"""SQL on Postgres's statistics views for the platform database (not a service schema).

Connections by state come from pg_stat_activity: the audit role is granted `pg_monitor`
(libs/devstack/pgroles.py) so it sees the state of every role's sessions, not only its own."""

from __future__ import annotations

import asyncpg


async def get_database_stats(conn: asyncpg.Connection) -> asyncpg.Record:
    """The current database's name, transaction and deadlock counters, size and connection cap."""
    return await conn.fetchrow(
        "SELECT d.datname, d.xact_commit, d.xact_rollback, d.deadlocks,"
        " pg_database_size(d.datid) AS size_bytes,"
        " current_setting('max_connections')::int AS max_connections"
        " FROM pg_stat_database d WHERE d.datname = current_database()"
    )


async def list_connections_by_state(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Client connections to the current database by state (NULL: a state this role cannot see)."""
    return await conn.fetch(
        "SELECT state, count(*) AS connections FROM pg_stat_activity"
        " WHERE datname = current_database() AND backend_type = 'client backend'"
        " GROUP BY state"
    )
