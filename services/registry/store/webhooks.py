"""SQL for registry.webhook_deliveries and the catalog entries a push names."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson


async def claim_delivery(
    conn: asyncpg.Connection, provider: str, delivery_id: str, event: str
) -> bool:
    """Record a delivery; False when it was recorded before (a redelivery)."""
    inserted = await conn.fetchval(
        "INSERT INTO registry.webhook_deliveries (provider, delivery_id, event)"
        " VALUES ($1, $2, $3) ON CONFLICT (provider, delivery_id) DO NOTHING RETURNING true",
        provider,
        delivery_id,
        event,
    )
    return bool(inserted)


async def set_outcome(
    conn: asyncpg.Connection, provider: str, delivery_id: str, outcome: dict[str, Any]
) -> None:
    """What handling the delivery did."""
    await conn.execute(
        "UPDATE registry.webhook_deliveries SET outcome = $3::jsonb"
        " WHERE provider = $1 AND delivery_id = $2",
        provider,
        delivery_id,
        orjson.dumps(outcome).decode(),
    )


async def release_delivery(conn: asyncpg.Connection, provider: str, delivery_id: str) -> None:
    """Forget a delivery whose handling failed, so that its redelivery is handled."""
    await conn.execute(
        "DELETE FROM registry.webhook_deliveries WHERE provider = $1 AND delivery_id = $2",
        provider,
        delivery_id,
    )


async def list_mcps_naming(conn: asyncpg.Connection, fragment: str) -> list[asyncpg.Record]:
    """Catalog entries whose repo_url contains `fragment` (case-insensitive): the candidates."""
    return await conn.fetch(
        "SELECT id, name, org, visibility, repo_url, title, description, homepage, language,"
        " license, category_id, featured, server_json, created_by, created_at, updated_at"
        " FROM registry.mcps WHERE repo_url IS NOT NULL"
        " AND strpos(lower(repo_url), lower($1)) > 0 ORDER BY created_at, id",
        fragment,
    )
