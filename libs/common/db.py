"""The asyncpg pool: JSON codecs and one place that opens and closes it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson

from libs.common.settings import Settings


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Let json/jsonb columns take and give Python objects."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


@asynccontextmanager
async def open_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """Open the service's pool and close it on exit."""
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=1,
        max_size=settings.db_pool_max,
        init=_init_connection,
        server_settings={"application_name": f"switchboard-{settings.service}"},
        command_timeout=30,
    )
    try:
        yield pool
    finally:
        await pool.close()


async def ping(pool: asyncpg.Pool) -> bool:
    """True when the database answers."""
    try:
        async with pool.acquire(timeout=2) as conn:
            return await conn.fetchval("SELECT 1") == 1
    except Exception:
        return False
