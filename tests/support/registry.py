"""The registry for other tests: a clean slate between tests.

Its settings and shared parts live in `libs.devstack.harness.registry` (the benchmarks use them
too); they are re-exported here for the gateway and sandbox tests that import them from here.
"""

from __future__ import annotations

import asyncpg

from libs.devstack.harness.registry import MASTER_KEY, registry_parts, registry_settings

__all__ = ["MASTER_KEY", "delete_user_servers", "registry_parts", "registry_settings"]


async def delete_user_servers(pool: asyncpg.Pool) -> None:
    """Remove every server but the built-in `code` one."""
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM registry.servers WHERE name <> 'code'")
