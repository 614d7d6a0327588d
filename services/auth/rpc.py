"""Handlers for rpc.auth.*: introspect and jwks."""

from __future__ import annotations

from typing import Any

import asyncpg

from libs.common import rpc
from libs.common.bus import Bus
from services.auth import principals
from services.auth.signing import KeyStore


async def serve(bus: Bus, pool: asyncpg.Pool, keystore: KeyStore) -> None:
    """Answer rpc.auth.introspect and rpc.auth.jwks (queue group: auth)."""

    async def introspect(request: dict[str, Any]) -> dict[str, Any]:
        return await principals.introspect(pool, request)

    async def jwks(_: dict[str, Any]) -> dict[str, Any]:
        async with pool.acquire() as conn:
            return await keystore.jwks(conn)

    await bus.serve(rpc.AUTH_INTROSPECT, introspect, queue="auth")
    await bus.serve(rpc.AUTH_JWKS, jwks, queue="auth")
