"""Handlers for rpc.auth.*: introspect, jwks, org and set_plan."""

from __future__ import annotations

import re

import asyncpg

from libs.common import outbox, rpc_types
from libs.common.authn import Principal
from libs.common.bus import Bus
from libs.common.errors import NotFound, ValidationError
from libs.common.events import ORG_UPDATED
from libs.common.rpc_types import (
    IntrospectRequest,
    Jwks,
    JwksRequest,
    OrgReply,
    OrgRequest,
    SetPlanRequest,
)
from services.auth import principals
from services.auth.events_out import org_payload
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

    async def set_plan_(request: SetPlanRequest) -> OrgReply:
        return await set_plan(pool, request)

    await bus.answer(rpc_types.AUTH_SET_PLAN, set_plan_, queue="auth")


async def org_by_ref(pool: asyncpg.Pool, request: OrgRequest) -> OrgReply:
    """rpc.auth.org: an org (not deleted) named by id or slug → its id, slug and status."""
    ref = request.ref
    if not ref:
        raise ValidationError("ref must be an org id or slug.", details={"field": "ref"})
    async with pool.acquire() as conn:
        row = await orgs.get(conn, ref)
    if row is None:
        raise NotFound(f"Organisation {ref!r} not found.", details={"org": ref})
    return _reply(row)


# the plan label PATCH …/plan accepts (services/auth/schemas.py PlanIn)
PLAN_RE = re.compile(r"^[a-z0-9_\-]{1,32}$")


async def set_plan(pool: asyncpg.Pool, request: SetPlanRequest) -> OrgReply:
    """rpc.auth.set_plan: store an org's plan and publish auth.org.updated with it."""
    plan = request.plan.lower()
    if not PLAN_RE.fullmatch(plan):
        raise ValidationError("plan must be a plan name.", details={"field": "plan"})
    async with pool.acquire() as conn, conn.transaction():
        row = await orgs.get(conn, request.org) if request.org else None
        if row is None:
            raise NotFound(f"Organisation {request.org!r} not found.", details={"org": request.org})
        row = await orgs.update(conn, row["id"], {"plan": plan})
        event = ORG_UPDATED.event(
            org_payload(row), source="auth", actor=request.actor, org=str(row["id"])
        )
        await outbox.enqueue(conn, "auth", event)
    return _reply(row)


def _reply(row: asyncpg.Record) -> OrgReply:
    """An org row as rpc.auth.org answers it."""
    return OrgReply(id=str(row["id"]), slug=row["slug"], status=row["status"], plan=row["plan"])
