"""Teams (= groups = areas): CRUD within an org, members with roles, and server grants.

Just over 300 lines on purpose: one route group; /teams and its /orgs/{org}/areas alias are
built by one route table from the same handlers, which share the private team lookups here.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from asyncpg.exceptions import UniqueViolationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import Principal, authenticate
from libs.common.errors import Conflict, NotFound, Unprocessable
from libs.common.events import (
    GRANT_DELETED,
    GRANT_UPDATED,
    MEMBERSHIP_CREATED,
    MEMBERSHIP_DELETED,
    TEAM_CREATED,
    TEAM_DELETED,
    TEAM_UPDATED,
    GrantChanged,
    MembershipChanged,
)
from libs.common.http import json_response, no_content, parse_body
from libs.common.pagination import list_query, page_body, paginate_request
from services.auth.access import (
    get_org,
    get_team,
    get_team_in_org,
    org_for,
    require_org,
    team_missing,
    team_org_ref,
)
from services.auth.context import context_of
from services.auth.events_out import emit, team_payload
from services.auth.servers import resolve_one
from services.auth.store import orgs, teams, users
from services.auth.tenancy_schemas import GrantIn, MemberIn, MemberRoleIn, TeamIn, TeamUpdate
from services.auth.views import grant_view, team_member_view, team_view


async def _team(request: Request, conn: asyncpg.Connection) -> asyncpg.Record:
    """The team of the path: /teams/{team} or /orgs/{org}/areas/{team}."""
    ref = request.path_params["team"]
    if "org" in request.path_params:
        return await get_team_in_org(conn, await get_org(conn, request.path_params["org"]), ref)
    return await get_team(conn, ref)


async def _team_for(
    request: Request, conn: asyncpg.Connection, principal: Principal, minimum: str
) -> asyncpg.Record:
    """The team of the path, when the principal holds at least `minimum` in its org."""
    team = await _team(request, conn)
    require_org(principal, team_org_ref(team), minimum, team_missing(request.path_params["team"]))
    return team


async def _parent(conn: asyncpg.Connection, org_id: uuid.UUID, ref: str | None) -> Any:
    """The parent team's id (it must be in the same org)."""
    if not ref:
        return None
    parent = await teams.get(conn, ref)
    if parent is None or parent["org_id"] != org_id:
        raise Unprocessable(
            "Invalid team.", details={"fields": {"parent": "no such team in the org"}}
        )
    return parent["id"]


async def create_team(request: Request) -> Response:
    """Create a team in an org (org admin)."""
    principal = await authenticate(request)
    body = await parse_body(request, TeamIn)
    org_ref = request.path_params.get("org") or body.org or _only_org(principal)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        org = await org_for(conn, principal, org_ref, "admin")
        parent = await _parent(conn, org["id"], body.parent)
        try:
            team_id = await teams.insert(conn, org["id"], body.name, body.description, parent)
        except UniqueViolationError:
            raise Conflict(f"A team {body.name!r} exists.", details={"name": body.name}) from None
        row = await teams.get(conn, str(team_id))
        await emit(conn, TEAM_CREATED, team_payload(row, body.parent), principal, str(org["id"]))
    return json_response(team_view(row), 201)


def _only_org(principal: Principal) -> str:
    """The org when the body names none: the caller's only org, else 422."""
    if len(principal.orgs) == 1:
        return next(iter(principal.orgs))
    raise Unprocessable("Name the org.", details={"fields": {"org": "field required"}})


async def list_teams(request: Request) -> Response:
    """Teams of the caller's orgs (all for platform admins); filters org, q."""
    principal = await authenticate(request)
    query = list_query(request, sorts=teams.SORTS, filters=("org",), default_order="asc")
    async with context_of(request).pool.acquire() as conn:
        only = None if principal.is_platform_admin else _member_orgs(principal)
        if "org" in request.path_params:
            org = await org_for(conn, principal, request.path_params["org"], "viewer")
            query.filters["org"] = str(org["id"])
            only = None
        rows, total = await teams.list_teams(conn, query, only)
    return json_response(page_body([team_view(r) for r in rows], total, query))


def _member_orgs(principal: Principal) -> list[uuid.UUID]:
    """The orgs whose teams a principal may see."""
    return [uuid.UUID(o) for o in set(principal.orgs) | set(principal.org_slugs.values())]


async def get_team_(request: Request) -> Response:
    """One team with its members and grants (org viewer)."""
    principal = await authenticate(request)
    async with context_of(request).pool.acquire() as conn:
        team = await _team_for(request, conn, principal, "viewer")
        members = await teams.list_members(conn, team["id"])
        grants = await teams.list_grants(conn, team["id"])
    return json_response(
        {
            **team_view(team),
            "members": [team_member_view(m) for m in members],
            "grants": [grant_view(g, team["name"]) for g in grants],
        }
    )


async def update_team(request: Request) -> Response:
    """Rename, describe or re-parent a team (org admin)."""
    principal = await authenticate(request)
    body = await parse_body(request, TeamUpdate)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        team = await _team_for(request, conn, principal, "admin")
        fields: dict[str, Any] = body.model_dump(exclude_none=True, exclude={"parent"})
        if body.parent is not None:
            await teams.lock_hierarchy(conn, team["org_id"])
            fields["parent_id"] = await _parent(conn, team["org_id"], body.parent)
            if fields["parent_id"] == team["id"]:
                raise Unprocessable("Invalid team.", details={"fields": {"parent": "is the team"}})
            parent_id = fields["parent_id"]
            if parent_id is not None and team["id"] in await teams.ancestors(conn, parent_id):
                raise Unprocessable(
                    "Invalid team.",
                    details={"fields": {"parent": "is a descendant of the team (a cycle)"}},
                )
        try:
            await teams.update(conn, team["id"], fields)
        except UniqueViolationError:
            raise Conflict(f"A team {body.name!r} exists.", details={"name": body.name}) from None
        row = await teams.get(conn, str(team["id"]))
        await emit(conn, TEAM_UPDATED, team_payload(row), principal, str(row["org_id"]))
    return json_response(team_view(row))


async def delete_team(request: Request) -> Response:
    """Delete a team with its memberships and grants (org admin)."""
    principal = await authenticate(request)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        team = await _team_for(request, conn, principal, "admin")
        await teams.delete(conn, team["id"])
        await emit(conn, TEAM_DELETED, team_payload(team), principal, str(team["org_id"]))
    return no_content()


async def list_members(request: Request) -> Response:
    """A team's members (org viewer)."""
    principal = await authenticate(request)
    async with context_of(request).pool.acquire() as conn:
        team = await _team_for(request, conn, principal, "viewer")
        rows = await teams.list_members(conn, team["id"])
    items = [team_member_view(r) for r in rows]
    return json_response(paginate_request(request, items))


async def add_member(request: Request) -> Response:
    """Add an org member to a team with a role (org admin)."""
    principal = await authenticate(request)
    body = await parse_body(request, MemberIn)
    return await _set_member(request, principal, body.user, body.role)


async def set_member_role(request: Request) -> Response:
    """Change a team member's role (org admin)."""
    principal = await authenticate(request)
    body = await parse_body(request, MemberRoleIn)
    return await _set_member(request, principal, request.path_params["user"], body.role, True)


async def _set_member(
    request: Request, principal: Principal, user_ref: str, role: str, existing: bool = False
) -> Response:
    """Upsert a team membership; the user must belong to the team's org."""
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        team = await _team_for(request, conn, principal, "admin")
        user = await users.get(conn, user_ref)
        if user is None:
            raise NotFound(f"User {user_ref!r} not found.", details={"user": user_ref})
        before = await teams.member_role(conn, team["id"], user["id"])
        if existing and before is None:
            raise NotFound("No such member.", details={"user": user_ref})
        if await orgs.role_of(conn, team["org_id"], user["id"]) is None:
            raise Unprocessable(
                "The user is not a member of the team's org.",
                details={"fields": {"user": "not a member of the org"}},
            )
        await teams.upsert_member(conn, team["id"], user["id"], role)
        payload = MembershipChanged(str(team["org_id"]), str(user["id"]), role, team=team["name"])
        await emit(conn, MEMBERSHIP_CREATED, payload, principal, str(team["org_id"]))
    body = {"team": team["name"], "user_id": str(user["id"]), "username": user["username"]}
    return json_response({**body, "role": role}, 200 if before else 201)


async def remove_member(request: Request) -> Response:
    """Remove a user from a team (org admin)."""
    principal = await authenticate(request)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        team = await _team_for(request, conn, principal, "admin")
        user = await users.get(conn, request.path_params["user"])
        if user is None or not await teams.delete_member(conn, team["id"], user["id"]):
            raise NotFound("No such member.", details={"user": request.path_params["user"]})
        payload = MembershipChanged(
            str(team["org_id"]), str(user["id"]), "member", "removed", team=team["name"]
        )
        await emit(conn, MEMBERSHIP_DELETED, payload, principal, str(team["org_id"]))
    return no_content()


async def list_grants(request: Request) -> Response:
    """A team's grants (org viewer)."""
    principal = await authenticate(request)
    async with context_of(request).pool.acquire() as conn:
        team = await _team_for(request, conn, principal, "viewer")
        rows = await teams.list_grants(conn, team["id"])
    items = [grant_view(r, team["name"]) for r in rows]
    return json_response(paginate_request(request, items))


async def set_grant(request: Request) -> Response:
    """Give a team permissions on a server of its org, optionally only on listed tools.

    The server is the org's own or one shared with it (org admin); a server of another org
    answers 404 like a missing one."""
    principal = await authenticate(request)
    body = await parse_body(request, GrantIn)
    perms = sorted(set(body.permissions))
    async with context_of(request).pool.acquire() as conn:
        team = await _team_for(request, conn, principal, "admin")
        org = str(team["org_id"])
        server = await resolve_one(context_of(request).bus, org, body.server)
        if "write" in perms and server.org != org:
            raise Unprocessable(
                "A shared server lends read and execute; only its own org may change it.",
                details={"fields": {"permissions": "write is only for the org's own servers"}},
            )
        server_id = uuid.UUID(server.id)
        async with conn.transaction():
            row = await teams.upsert_grant(
                conn, team["id"], server.name, server_id, perms, body.tools
            )
            payload = GrantChanged(
                str(row["id"]), team["name"], org, server.name, perms, body.tools, server.id
            )
            await emit(conn, GRANT_UPDATED, payload, principal, org)
    return json_response(grant_view(row, team["name"]), 201)


async def delete_grant(request: Request) -> Response:
    """Remove a team's grant on a server (by grant id or server name; org admin)."""
    principal = await authenticate(request)
    async with context_of(request).pool.acquire() as conn, conn.transaction():
        team = await _team_for(request, conn, principal, "admin")
        row = await teams.delete_grant(conn, team["id"], request.path_params["grant"])
        if row is None:
            raise NotFound("No such grant.", details={"grant": request.path_params["grant"]})
        server_id = str(row["server_id"]) if row["server_id"] else None
        payload = GrantChanged(
            str(row["id"]), team["name"], str(team["org_id"]), row["server"], [], None, server_id
        )
        await emit(conn, GRANT_DELETED, payload, principal, str(team["org_id"]))
    return no_content()


def _team_routes(base: str, item: str) -> list[Route]:
    """Team routes under a collection path and its item path."""
    return [
        Route(base, list_teams, methods=["GET"]),
        Route(base, create_team, methods=["POST"]),
        Route(item, get_team_, methods=["GET"]),
        Route(item, update_team, methods=["PUT", "PATCH"]),
        Route(item, delete_team, methods=["DELETE"]),
        Route(item + "/members", list_members, methods=["GET"]),
        Route(item + "/members", add_member, methods=["POST"]),
        Route(item + "/members/{user}", set_member_role, methods=["PUT", "PATCH"]),
        Route(item + "/members/{user}/role", set_member_role, methods=["PATCH", "PUT"]),
        Route(item + "/members/{user}", remove_member, methods=["DELETE"]),
        Route(item + "/grants", list_grants, methods=["GET"]),
        Route(item + "/grants", set_grant, methods=["POST"]),
        Route(item + "/grants/{grant}", delete_grant, methods=["DELETE"]),
        Route(item + "/servers", set_grant, methods=["POST"]),
    ]


routes = [
    *_team_routes("/api/v1/teams", "/api/v1/teams/{team}"),
    *_team_routes("/api/v1/groups", "/api/v1/groups/{team}"),
    *_team_routes("/api/v1/orgs/{org}/areas", "/api/v1/orgs/{org}/areas/{team}"),
]
