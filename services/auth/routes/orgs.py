"""Organisations: CRUD, suspend/activate, plan, members, invites, roles.

Just over 300 lines on purpose: one route group (an org, its members and invites), whose
handlers share the private org lookups and role-change checks here.
"""

from __future__ import annotations

import uuid

from asyncpg.exceptions import UniqueViolationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import Principal, authenticate, hash_token, require_platform_admin
from libs.common.errors import Conflict, Forbidden, NotFound, Unauthenticated
from libs.common.events import (
    MEMBERSHIP_CREATED,
    MEMBERSHIP_DELETED,
    MEMBERSHIP_UPDATED,
    ORG_ACTIVATED,
    ORG_CREATED,
    ORG_DELETED,
    ORG_SUSPENDED,
    ORG_UPDATED,
    MembershipChanged,
)
from libs.common.http import json_response, no_content, parse_body
from libs.common.pagination import list_query, page_body, paginate_request
from services.auth.access import get_org, org_for, org_level
from services.auth.context import context_of
from services.auth.credentials import INVITE, new_credential
from services.auth.events_out import emit, org_payload
from services.auth.schemas import PlanIn
from services.auth.seats import require_seat
from services.auth.store import orgs, users
from services.auth.tenancy_schemas import (
    InviteAcceptIn,
    InviteIn,
    MemberIn,
    MemberRoleIn,
    OrgIn,
    OrgUpdate,
)
from services.auth.views import member_view, org_view

ROLES = {
    "owner": [
        "org:read",
        "org:edit",
        "org:delete",
        "members:manage",
        "owners:manage",
        "teams:manage",
        "grants:manage",
        "tokens:manage",
        "servers:use",
    ],
    "admin": [
        "org:read",
        "org:edit",
        "members:manage",
        "teams:manage",
        "grants:manage",
        "tokens:manage",
        "servers:use",
    ],
    "member": ["org:read", "servers:use"],
    "viewer": ["org:read"],
}


async def create_org(request: Request) -> Response:
    """Create an org (platform admin); the creator (a user) becomes its owner."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    body = await parse_body(request, OrgIn)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        try:
            row = await orgs.insert(conn, body.slug, body.name, body.display_name, body.plan)
        except UniqueViolationError:
            raise Conflict(f"An org {body.slug!r} exists.", details={"slug": body.slug}) from None
        await emit(conn, ORG_CREATED, org_payload(row), principal, str(row["id"]))
        if principal.kind == "user" and principal.user_id:
            await orgs.upsert_member(conn, row["id"], uuid.UUID(principal.user_id), "owner")
            payload = MembershipChanged(str(row["id"]), principal.user_id, "owner")
            await emit(conn, MEMBERSHIP_CREATED, payload, principal, str(row["id"]))
    return json_response(org_view(row), 201)


async def list_orgs(request: Request) -> Response:
    """Orgs: all for platform admins, else the caller's."""
    principal = await authenticate(request)
    query = list_query(request, sorts=orgs.SORTS, filters=("status", "plan"))
    only = None if principal.is_platform_admin else [uuid.UUID(o) for o in _org_ids(principal)]
    async with context_of(request).pool.acquire() as conn:
        rows, total = await orgs.list_orgs(conn, query, only)
    return json_response(page_body([org_view(r) for r in rows], total, query))


def _org_ids(principal: Principal) -> set[str]:
    """Orgs a principal belongs to (or whose token it is)."""
    return set(principal.orgs) | set(principal.org_slugs.values())


async def get_org_(request: Request) -> Response:
    """One org (any member, or a token of the org)."""
    principal = await authenticate(request)
    async with context_of(request).pool.acquire() as conn:
        org = await org_for(conn, principal, request.path_params["org"], "viewer")
    return json_response({**org_view(org), "my_role": org_level(principal, org)})


async def update_org(request: Request) -> Response:
    """Rename an org (org admin)."""
    principal = await authenticate(request)
    body = await parse_body(request, OrgUpdate)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        org = await org_for(conn, principal, request.path_params["org"], "admin")
        row = await orgs.update(conn, org["id"], body.model_dump(exclude_none=True))
        await emit(conn, ORG_UPDATED, org_payload(row), principal, str(row["id"]))
    return json_response(org_view(row))


async def set_plan(request: Request) -> Response:
    """Change an org's plan (platform admin)."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    body = await parse_body(request, PlanIn)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        org = await get_org(conn, request.path_params["org"])
        row = await orgs.update(conn, org["id"], {"plan": body.plan})
        await emit(conn, ORG_UPDATED, org_payload(row), principal, str(row["id"]))
    return json_response(org_view(row))


async def _set_status(request: Request, status: str) -> Response:
    """Suspend, activate or delete an org (platform admin)."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    kind = {"suspended": ORG_SUSPENDED, "active": ORG_ACTIVATED, "deleted": ORG_DELETED}[status]
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        org = await get_org(conn, request.path_params["org"])
        row = await orgs.set_status(conn, org["id"], status)
        await emit(conn, kind, org_payload(row), principal, str(row["id"]))
    return no_content() if status == "deleted" else json_response(org_view(row))


async def suspend_org(request: Request) -> Response:
    """Suspend an org: its members lose its roles, its tokens stop working."""
    return await _set_status(request, "suspended")


async def activate_org(request: Request) -> Response:
    """Activate a suspended org."""
    return await _set_status(request, "active")


async def delete_org(request: Request) -> Response:
    """Soft-delete an org."""
    return await _set_status(request, "deleted")


async def list_members(request: Request) -> Response:
    """Members and pending invites of an org (any member)."""
    principal = await authenticate(request)
    async with context_of(request).pool.acquire() as conn:
        org = await org_for(conn, principal, request.path_params["org"], "viewer")
        rows = await orgs.list_members(conn, org["id"])
    items = [member_view(r) for r in rows]
    return json_response(paginate_request(request, items))


def _check_role_change(principal: Principal, org: object, role: str, current: str | None) -> None:
    """Only owners make or unmake owners."""
    if "owner" in (role, current) and org_level(principal, org) != "owner":  # type: ignore[arg-type]
        raise Forbidden("Only an owner may grant or remove the owner role.")


async def add_member(request: Request) -> Response:
    """Add a user to an org with a role (org admin)."""
    principal = await authenticate(request)
    body = await parse_body(request, MemberIn)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        org = await org_for(conn, principal, request.path_params["org"], "admin")
        user = await users.get(conn, body.user)
        if user is None:
            raise NotFound(f"User {body.user!r} not found.", details={"user": body.user})
        current = await orgs.role_of(conn, org["id"], user["id"])
        _check_role_change(principal, org, body.role, current)
        await require_seat(conn, org["id"], user["id"])
        created = await orgs.upsert_member(conn, org["id"], user["id"], body.role)
        kind = MEMBERSHIP_CREATED if created else MEMBERSHIP_UPDATED
        payload = MembershipChanged(str(org["id"]), str(user["id"]), body.role)
        await emit(conn, kind, payload, principal, str(org["id"]))
        row = await orgs.get_member(conn, org["id"], user["id"])
    return json_response(member_view(row), 201 if created else 200)


async def set_member_role(request: Request) -> Response:
    """Change a member's role (org admin; owners only by owners)."""
    principal = await authenticate(request)
    body = await parse_body(request, MemberRoleIn)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        org = await org_for(conn, principal, request.path_params["org"], "admin")
        user = await users.get(conn, request.path_params["user"])
        current = await orgs.role_of(conn, org["id"], user["id"]) if user else None
        if user is None or current is None:
            raise NotFound("No such member.", details={"user": request.path_params["user"]})
        _check_role_change(principal, org, body.role, current)
        await orgs.upsert_member(conn, org["id"], user["id"], body.role)
        payload = MembershipChanged(str(org["id"]), str(user["id"]), body.role)
        await emit(conn, MEMBERSHIP_UPDATED, payload, principal, str(org["id"]))
        row = await orgs.get_member(conn, org["id"], user["id"])
    return json_response(member_view(row))


async def remove_member(request: Request) -> Response:
    """Remove a member (org admin; owners only by owners)."""
    principal = await authenticate(request)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        org = await org_for(conn, principal, request.path_params["org"], "admin")
        user = await users.get(conn, request.path_params["user"])
        current = await orgs.role_of(conn, org["id"], user["id"]) if user else None
        if user is None or current is None:
            raise NotFound("No such member.", details={"user": request.path_params["user"]})
        _check_role_change(principal, org, current, current)
        await orgs.delete_member(conn, org["id"], user["id"])
        payload = MembershipChanged(str(org["id"]), str(user["id"]), current, "removed")
        await emit(conn, MEMBERSHIP_DELETED, payload, principal, str(org["id"]))
    return no_content()


async def invite(request: Request) -> Response:
    """Invite by email: a pending membership; the invite token is returned (no mail server)."""
    principal = await authenticate(request)
    body = await parse_body(request, InviteIn)
    cred = new_credential(INVITE)
    ttl = context_of(request).settings.invite_ttl_s
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        org = await org_for(conn, principal, request.path_params["org"], "admin")
        _check_role_change(principal, org, body.role, None)
        row = await orgs.insert_invite(conn, org["id"], body.email, body.role, cred.hash, ttl)
        payload = MembershipChanged(str(org["id"]), None, body.role, "pending", email=body.email)
        await emit(conn, MEMBERSHIP_CREATED, payload, principal, str(org["id"]))
    return json_response(
        {
            "id": str(row["id"]),
            "org_id": str(org["id"]),
            "email": body.email,
            "role": body.role,
            "status": "pending",
            "invite_token": cred.secret,
            "expires_at": row["invite_expires_at"].isoformat().replace("+00:00", "Z"),
        },
        201,
    )


async def accept_invite(request: Request) -> Response:
    """Redeem an invite token as the signed-in user."""
    principal = await authenticate(request)
    body = await parse_body(request, InviteAcceptIn)
    if principal.user_id is None:
        raise Unauthenticated("Only a user can accept an invite.")
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        invitee = uuid.UUID(principal.user_id)
        pending = await orgs.pending_invite(conn, hash_token(body.token))
        if pending is not None:
            await require_seat(conn, pending["org_id"], invitee)
        row = await orgs.accept_invite(conn, hash_token(body.token), invitee)
        if row is None:
            raise NotFound("The invite is unknown or expired.")
        payload = MembershipChanged(str(row["org_id"]), principal.user_id, row["role"])
        await emit(conn, MEMBERSHIP_UPDATED, payload, principal, str(row["org_id"]))
        member = await orgs.get_member(conn, row["org_id"], uuid.UUID(principal.user_id))
    return json_response(member_view(member))


async def list_roles(request: Request) -> Response:
    """The org roles and their permissions (any member)."""
    principal = await authenticate(request)
    async with context_of(request).pool.acquire() as conn:
        await org_for(conn, principal, request.path_params["org"], "viewer")
    items = [{"role": r, "permissions": p} for r, p in ROLES.items()]
    return json_response(paginate_request(request, items))


def _org_routes(prefix: str) -> list[Route]:
    """The org routes under /api/v1/orgs or the admin alias."""
    return [
        Route(prefix, create_org, methods=["POST"]),
        Route(prefix, list_orgs, methods=["GET"]),
        Route(prefix + "/{org}", get_org_, methods=["GET"]),
        Route(prefix + "/{org}", update_org, methods=["PUT", "PATCH"]),
        Route(prefix + "/{org}", delete_org, methods=["DELETE"]),
        Route(prefix + "/{org}/plan", set_plan, methods=["PATCH", "PUT"]),
        Route(prefix + "/{org}/suspend", suspend_org, methods=["POST"]),
        Route(prefix + "/{org}/activate", activate_org, methods=["POST"]),
    ]


routes = [
    *_org_routes("/api/v1/orgs"),
    *_org_routes("/api/v1/admin/orgs"),
    Route("/api/v1/orgs/{org}/members", list_members, methods=["GET"]),
    Route("/api/v1/orgs/{org}/members", add_member, methods=["POST"]),
    Route("/api/v1/orgs/{org}/members/{user}", set_member_role, methods=["PUT", "PATCH"]),
    Route("/api/v1/orgs/{org}/members/{user}/role", set_member_role, methods=["PATCH", "PUT"]),
    Route("/api/v1/orgs/{org}/members/{user}", remove_member, methods=["DELETE"]),
    Route("/api/v1/orgs/{org}/users/invite", invite, methods=["POST"]),
    Route("/api/v1/orgs/{org}/invites", invite, methods=["POST"]),
    Route("/api/v1/auth/invites/accept", accept_invite, methods=["POST"]),
    Route("/api/v1/orgs/{org}/roles", list_roles, methods=["GET"]),
]
