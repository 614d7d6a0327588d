"""Handlers for rpc.auth.*: introspect, jwks and org."""

from __future__ import annotations

import asyncpg

from libs.common import rpc_types
from libs.common.authn import Principal
from libs.common.bus import Bus
from libs.common.errors import NotFound, ValidationError
from libs.common.rpc_types import IntrospectRequest, Jwks, JwksRequest, OrgReply, OrgRequest
from services.auth import principals
from services.auth.signing import KeyStore
from services.auth.store import orgs


async def serve(bus: Bus, pool: asyncpg.Pool, keystore: KeyStore) -> None:
    """Answer rpc.auth.introspect, rpc.auth.jwks and rpc.auth.org (queue group: auth)."""

    async def introspect(request: IntrospectRequest) -> Principal:
        return await principals.introspect(pool, request)

    async def jwks(_: JwksRequest) -> Jwks:
        async with pool.acquire() as conn:
            return Jwks(keys=(await keystore.jwks(conn))["keys"])

    async def org(request: OrgRequest) -> OrgReply:
        return await org_by_ref(pool, request)

    await bus.answer(rpc_types.AUTH_INTROSPECT, introspect, queue="auth")
    await bus.answer(rpc_types.AUTH_JWKS, jwks, queue="auth")
    await bus.answer(rpc_types.AUTH_ORG, org, queue="auth")


async def org_by_ref(pool: asyncpg.Pool, request: OrgRequest) -> OrgReply:
    """rpc.auth.org: an org (not deleted) named by id or slug → its id, slug and status."""
    ref = request.ref
    if not ref:
        raise ValidationError("ref must be an org id or slug.", details={"field": "ref"})
    async with pool.acquire() as conn:
        row = await orgs.get(conn, ref)
    if row is None:
        raise NotFound(f"Organisation {ref!r} not found.", details={"org": ref})
    return OrgReply(id=str(row["id"]), slug=row["slug"], status=row["status"])
