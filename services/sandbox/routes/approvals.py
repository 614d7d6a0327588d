"""Approvals of tools, modules and network hosts: lists, stats, decisions, revocation."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common import outbox
from libs.common.authn import Principal, authenticate, require_platform_admin
from libs.common.errors import Conflict, Forbidden, NotFound
from libs.common.events import APPROVAL_REQUESTED, ApprovalChanged
from libs.common.http import json_response, parse_body
from libs.common.pagination import list_query, page_body
from services.sandbox import approvals, approvers
from services.sandbox.context import runtime_of
from services.sandbox.schemas import Decision, ModuleRequest, Revoke
from services.sandbox.store import SCHEMA
from services.sandbox.store import approvals as approvals_store

BASE = "/api/v1/sandbox/approvals"


async def _approver(request: Request) -> Principal:
    """Approvals are decided by platform admins."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    return principal


async def _decider(request: Request, kind: str) -> Principal:
    """Who may decide this request: platform admins; org admins of its org under `org_admin`."""
    principal = await authenticate(request)
    if principal.is_platform_admin:
        return principal
    rt = runtime_of(request)
    policy = await rt.policy()
    if policy.approvers != "org_admin":
        raise Forbidden(
            "Only a platform admin may decide approvals.", details={"approvers": policy.approvers}
        )
    async with rt.pool.acquire() as conn:
        row = await approvals_store.get_approval(conn, _approval_id(request))
    if row is None or row["kind"] != kind:
        raise NotFound("No such approval.", details={"id": request.path_params["id"]})
    org = await rt.request_org(row)
    org_id = principal.org_slugs.get(org, org) if org is not None else None
    if org_id is not None and principal.role_in(org_id) is None:
        # another org's request is not there for the caller (docs/TENANCY.md)
        raise NotFound("No such approval.", details={"id": request.path_params["id"]})
    if not approvers.may_decide(policy, principal, org):
        raise Forbidden(
            "Only a platform admin or an admin of the request's org may decide it.",
            details={"approvers": policy.approvers, "org": org},
        )
    return principal


def _approval_id(request: Request) -> uuid.UUID:
    """The approval id from the path, or 404."""
    try:
        return uuid.UUID(request.path_params["id"])
    except ValueError:
        raise NotFound("No such approval.", details={"id": request.path_params["id"]}) from None


async def stats(request: Request) -> Response:
    """Counts by kind and status."""
    await _approver(request)
    async with runtime_of(request).pool.acquire() as conn:
        rows = await approvals_store.approval_stats(conn)
    out: dict[str, dict[str, int]] = {
        k: {"pending": 0, "approved": 0, "rejected": 0, "revoked": 0}
        for k in approvals.KINDS.values()
    }
    for row in rows:
        out[row["kind"]][row["status"]] = row["n"]
    pending = sum(v["pending"] for v in out.values())
    return json_response({"by_kind": out, "pending": pending})


async def list_approvals(request: Request) -> Response:
    """Approvals of one kind (tools, modules, network), `status` filter, paged."""
    await _approver(request)
    kind = approvals.check_kind(request.path_params["kind"])
    query = list_query(request, sorts=["created_at", "updated_at"], filters=["status"])
    async with runtime_of(request).pool.acquire() as conn:
        rows, total = await approvals_store.list_approvals(
            conn, kind, query.filters.get("status"), query.order_sql, query.page_size, query.offset
        )
    return json_response(page_body([approvals.approval_out(r) for r in rows], total, query))


async def request_module(request: Request) -> Response:
    """Ask for a module to be put on the allowlist (a pending module approval)."""
    principal = await authenticate(request)
    body = await parse_body(request, ModuleRequest)
    async with runtime_of(request).pool.acquire() as conn, conn.transaction():
        row = await approvals_store.insert_approval(
            conn,
            kind="module",
            subject=body.module,
            requested_by=principal.id,
            details={"reason": body.reason} if body.reason else {},
        )
        if row is None:
            raise Conflict(
                "This module is already awaiting approval.", details={"module": body.module}
            )
        payload = ApprovalChanged(
            id=str(row["id"]),
            kind="module",
            subject=body.module,
            status="pending",
            action="request",
            reason=body.reason,
        )
        await outbox.enqueue(
            conn, SCHEMA, APPROVAL_REQUESTED.event(payload, source=SCHEMA, actor=principal.id)
        )
    return json_response(approvals.approval_out(row), 201)


async def act(request: Request) -> Response:
    """Approve or reject a pending request."""
    rt = runtime_of(request)
    kind = approvals.check_kind(request.path_params["kind"])
    principal = await _decider(request, kind)
    body = await parse_body(request, Decision)
    async with rt.pool.acquire() as conn, conn.transaction():
        row = await approvals.decide(
            rt,
            conn,
            kind,
            _approval_id(request),
            body.action,
            body.reason,
            principal.id,
        )
    return json_response(approvals.approval_out(row))


async def revoke(request: Request) -> Response:
    """Revoke an approval: the tool stops being served, the host or module is removed."""
    rt = runtime_of(request)
    kind = approvals.check_kind(request.path_params["kind"])
    principal = await _decider(request, kind)
    body = Revoke() if not await request.body() else await parse_body(request, Revoke)
    async with rt.pool.acquire() as conn, conn.transaction():
        row = await approvals.decide(
            rt,
            conn,
            kind,
            _approval_id(request),
            "revoke",
            body.reason,
            principal.id,
        )
    return json_response(approvals.approval_out(row))


routes = [
    Route(f"{BASE}/stats", stats, methods=["GET"]),
    Route(f"{BASE}/modules", request_module, methods=["POST"]),
    Route(BASE + "/{kind}", list_approvals, methods=["GET"]),
    Route(BASE + "/{kind}/{id}/action", act, methods=["POST"]),
    Route(BASE + "/{kind}/{id}/revoke", revoke, methods=["POST"]),
]
