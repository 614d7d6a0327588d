"""Handlers for rpc.auth.*: introspect, jwks and org."""

from __future__ import annotations

from typing import Any

import asyncpg

from libs.common import rpc
from libs.common.bus import Bus
from libs.common.errors import NotFound, ValidationError
from services.auth import principals
from services.auth.signing import KeyStore
from services.auth.store import orgs


async def serve(bus: Bus, pool: asyncpg.Pool, keystore: KeyStore) -> None:
    """Answer rpc.auth.introspect, rpc.auth.jwks and rpc.auth.org (queue group: auth)."""

    async def introspect(request: dict[str, Any]) -> dict[str, Any]:
        return await principals.introspect(pool, request)

    async def jwks(_: dict[str, Any]) -> dict[str, Any]:
        async with pool.acquire() as conn:
            return await keystore.jwks(conn)

    async def org(request: dict[str, Any]) -> dict[str, Any]:
        return await org_by_ref(pool, request)

    await bus.serve(rpc.AUTH_INTROSPECT, introspect, queue="auth")
    await bus.serve(rpc.AUTH_JWKS, jwks, queue="auth")
    await bus.serve(rpc.AUTH_ORG, org, queue="auth")


async def org_by_ref(pool: asyncpg.Pool, request: dict[str, Any]) -> dict[str, Any]:
    """rpc.auth.org: an org (not deleted) named by id or slug → its id, slug and status."""
    ref = request.get("ref")
    if not isinstance(ref, str) or not ref:
        raise ValidationError("ref must be an org id or slug.", details={"field": "ref"})
    async with pool.acquire() as conn:
        row = await orgs.get(conn, ref)
    if row is None:
        raise NotFound(f"Organisation {ref!r} not found.", details={"org": ref})
    return {"id": str(row["id"]), "slug": row["slug"], "status": row["status"]}
