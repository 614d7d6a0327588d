"""Apply a service's ordered .sql migrations into its own schema, once, under an advisory lock."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncpg
import structlog

log = structlog.get_logger()

LOCK_NAMESPACE = 0x5B0A  # first key of the two-key advisory lock; the second is per schema


# tables every schema has: migration records, the outbox, and consumed event ids
FRAMEWORK_TABLES = """
CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS "{schema}".outbox (
    seq bigserial PRIMARY KEY,
    event_id uuid NOT NULL UNIQUE,
    subject text NOT NULL,
    payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS "{schema}".processed_events (
    consumer text NOT NULL,
    event_id text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
"""


def _lock_key(schema: str) -> int:
    """A stable 32-bit key for the schema's advisory lock."""
    return int.from_bytes(hashlib.sha256(schema.encode()).digest()[:4], "big", signed=True)


async def apply(pool: asyncpg.Pool, *, schema: str, directory: Path) -> list[str]:
    """Apply every not-yet-applied `NNNN_*.sql` file in order; returns what was applied now."""
    files = sorted(p for p in directory.glob("*.sql") if p.name[:4].isdigit())
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        # a session lock: a second replica waits here until the first has finished
        await conn.execute("SELECT pg_advisory_lock($1, $2)", LOCK_NAMESPACE, _lock_key(schema))
        try:
            # a service's own role owns its schema but may not create schemas (the devstack
            # creates it, libs/devstack/pgroles.py): create it only when it is missing
            exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema)
            if not exists:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(FRAMEWORK_TABLES.format(schema=schema))
            done = {
                r["version"]
                for r in await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
            }
            for path in files:
                if path.name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(f'SET LOCAL search_path TO "{schema}", public')
                    await conn.execute(path.read_text())
                    await conn.execute(
                        f'INSERT INTO "{schema}".schema_migrations (version) VALUES ($1)', path.name
                    )
                applied_now.append(path.name)
                log.info("migration_applied", schema=schema, version=path.name)
        finally:
            await conn.execute(
                "SELECT pg_advisory_unlock($1, $2)", LOCK_NAMESPACE, _lock_key(schema)
            )
    return applied_now
