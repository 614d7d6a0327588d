"""Migrations apply once, in order, even when replicas start together."""

import asyncio
import secrets
from pathlib import Path

import asyncpg

from libs.common import migrate

MIGRATIONS = Path(__file__).parents[2] / "fixtures" / "common" / "migrations"


async def test_two_replicas_migrating_at_once_both_succeed_and_apply_once(pg_url: str) -> None:
    schema = f"m_{secrets.token_hex(3)}"
    pools = [await asyncpg.create_pool(pg_url, min_size=1, max_size=2) for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(migrate.apply(p, schema=schema, directory=MIGRATIONS) for p in pools)
        )
        applied = sorted(name for result in results for name in result)
        assert applied == ["0001_widgets.sql", "0002_widget_colour.sql"]
        async with pools[0].acquire() as conn:
            versions = await conn.fetch(f"SELECT version FROM {schema}.schema_migrations")
            cols = await conn.fetch(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = $1 AND table_name = 'widgets'",
                schema,
            )
        assert len(versions) == 2
        assert {c["column_name"] for c in cols} == {"id", "name", "colour"}
        assert await migrate.apply(pools[0], schema=schema, directory=MIGRATIONS) == []
    finally:
        for p in pools:
            await p.close()
