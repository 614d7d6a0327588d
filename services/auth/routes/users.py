"""Users: create, list, get, update, soft delete, suspend/activate (single, bulk), role."""

from __future__ import annotations

import uuid

import asyncpg
from asyncpg.exceptions import UniqueViolationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate, require_platform_admin
from libs.common.errors import Conflict, Forbidden, NotFound, Unprocessable
from libs.common.events import (
    USER_ACTIVATED,
    USER_CREATED,
    USER_DELETED,
    USER_SUSPENDED,
    USER_UPDATED,
)
from libs.common.http import json_response, no_content, parse_body
from libs.common.pagination import list_query, page_body
from services.auth import sessions
from services.auth.context import context_of
from services.auth.events_out import emit, user_payload
from services.auth.routes.auth import check_password
from services.auth.schemas import BulkIn, PlanIn, RoleIn, UserIn, UserUpdate
from services.auth.store import users
from services.auth.views import user_view

STATUS_EVENTS = {"suspended": USER_SUSPENDED, "active": USER_ACTIVATED, "deleted": USER_DELETED}


def _missing(ref: str) -> NotFound:
    """The 404 of a user that does not exist, or that only a platform admin may see."""
    return NotFound(f"User {ref!r} not found.", details={"user": ref})


async def _get(conn: asyncpg.Connection, ref: str) -> asyncpg.Record:
    """A user by id or username, else 404."""
    row = await users.get(conn, ref)
    if row is None:
        raise _missing(ref)
    return row


async def create_user(request: Request) -> Response:
    """Create a user (platform admin)."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    body = await parse_body(request, UserIn)
    hashed = None
    if body.password is not None:
        check_password(request, body.password, body.username, "password")
        hashed = await context_of(request).passwords.hash(body.password)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        try:
            row = await users.insert(
                conn,
                username=body.username,
                email=body.email,
                display_name=body.display_name,
                password_hash=hashed,
                platform_role=body.platform_role,
            )
        except UniqueViolationError:
            raise Conflict(
                "That username or email is taken.", details={"username": body.username}
            ) from None
        await emit(conn, USER_CREATED, user_payload(row), principal)
    return json_response(user_view(row), 201)


async def list_users(request: Request) -> Response:
    """Users with search (q) and filters role, status, org (platform admin)."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    query = list_query(request, sorts=users.SORTS, filters=("role", "status", "org"))
    if query.filters.get("role") == "admin":
        query.filters["role"] = "platform_admin"
    async with context_of(request).pool.acquire() as conn:
        rows, total = await users.list_users(conn, query)
    return json_response(page_body([user_view(r) for r in rows], total, query))


async def get_user(request: Request) -> Response:
    """One user (platform admin, or oneself)."""
    principal = await authenticate(request)
    async with context_of(request).pool.acquire() as conn:
        row = await _get(conn, request.path_params["user"])
    if not principal.is_platform_admin and principal.user_id != str(row["id"]):
        raise _missing(request.path_params["user"])  # another user is not revealed
    return json_response(user_view(row))


async def update_user(request: Request) -> Response:
    """Update email, display name or plan (platform admin, or oneself without plan)."""
    principal = await authenticate(request)
    body = await parse_body(request, UserUpdate)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        user = await _get(conn, request.path_params["user"])
        self_edit = principal.user_id == str(user["id"]) and principal.kind == "user"
        if not principal.is_platform_admin and principal.user_id != str(user["id"]):
            raise _missing(request.path_params["user"])
        if not principal.is_platform_admin and not (self_edit and body.plan is None):
            raise Forbidden("Only a platform admin may change other users or plans.")
        try:
            row = await users.update(conn, user["id"], body.model_dump(exclude_none=True))
        except UniqueViolationError:
            raise Conflict("That email is taken.", details={"email": body.email}) from None
        await emit(conn, USER_UPDATED, user_payload(row), principal)
    return json_response(user_view(row))


async def set_plan(request: Request) -> Response:
    """Change a user's plan (platform admin)."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    body = await parse_body(request, PlanIn)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        user = await _get(conn, request.path_params["user"])
        row = await users.update(conn, user["id"], {"plan": body.plan})
        await emit(conn, USER_UPDATED, user_payload(row), principal)
    return json_response(user_view(row))


async def set_role(request: Request) -> Response:
    """Set the platform role: user or platform_admin (platform admin; not one's own)."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    body = await parse_body(request, RoleIn)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        user = await _get(conn, request.path_params["user"])
        if str(user["id"]) == principal.user_id:
            raise Conflict("You cannot change your own platform role.")
        row = await users.update(conn, user["id"], {"platform_role": body.role})
        await emit(conn, USER_UPDATED, user_payload(row), principal)
    return json_response(user_view(row))


async def _set_status(request: Request, ids: list[str], status: str) -> list[asyncpg.Record]:
    """Change users' status; suspending or deleting ends their sessions."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        found = [await _get(conn, ref) for ref in ids]
        if principal.user_id in {str(u["id"]) for u in found} and status != "active":
            raise Conflict("You cannot suspend or delete yourself.")
        rows = await users.set_status(conn, [u["id"] for u in found], status)
        for row in rows:
            if status != "active":
                await sessions.end_all(conn, row["id"], f"user_{status}")
            await emit(conn, STATUS_EVENTS[status], user_payload(row), principal)
    return rows


async def suspend_user(request: Request) -> Response:
    """Suspend a user: every token of theirs stops working."""
    await _set_status(request, [request.path_params["user"]], "suspended")
    async with context_of(request).pool.acquire() as conn:
        row = await _get(conn, request.path_params["user"])
    return json_response(user_view(row))


async def activate_user(request: Request) -> Response:
    """Activate a suspended user."""
    await _set_status(request, [request.path_params["user"]], "active")
    async with context_of(request).pool.acquire() as conn:
        row = await _get(conn, request.path_params["user"])
    return json_response(user_view(row))


async def delete_user(request: Request) -> Response:
    """Soft-delete a user."""
    await _set_status(request, [request.path_params["user"]], "deleted")
    return no_content()


async def _bulk(request: Request, status: str) -> Response:
    """Suspend or activate many users at once (all or nothing)."""
    body = await parse_body(request, BulkIn)
    for ref in body.user_ids:
        try:
            uuid.UUID(ref)
        except ValueError:
            raise Unprocessable(
                "Invalid user ids.", details={"fields": {"user_ids": f"{ref!r} is not a UUID"}}
            ) from None
    rows = await _set_status(request, body.user_ids, status)
    return json_response({"updated": len(rows), "user_ids": [str(r["id"]) for r in rows]})


async def bulk_suspend(request: Request) -> Response:
    """Suspend the listed users."""
    return await _bulk(request, "suspended")


async def bulk_activate(request: Request) -> Response:
    """Activate the listed users."""
    return await _bulk(request, "active")


def _user_routes(prefix: str) -> list[Route]:
    """The user routes under /api/v1/users or the admin alias."""
    item = prefix + "/{user}"
    return [
        Route(prefix, list_users, methods=["GET"]),
        Route(prefix, create_user, methods=["POST"]),
        Route(prefix + "/bulk/suspend", bulk_suspend, methods=["POST"]),
        Route(prefix + "/bulk/activate", bulk_activate, methods=["POST"]),
        Route(item, get_user, methods=["GET"]),
        Route(item, update_user, methods=["PUT", "PATCH"]),
        Route(item, delete_user, methods=["DELETE"]),
        Route(item + "/plan", set_plan, methods=["PATCH", "PUT"]),
        Route(item + "/role", set_role, methods=["PATCH", "PUT"]),
        Route(item + "/suspend", suspend_user, methods=["POST"]),
        Route(item + "/activate", activate_user, methods=["POST"]),
    ]


routes = [*_user_routes("/api/v1/users"), *_user_routes("/api/v1/admin/users")]
