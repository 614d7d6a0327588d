"""The permission matrix: every auth endpoint × every kind of caller, asserting exact statuses."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.auth import AuthClient, User, unique

CALLERS = (
    "anonymous",
    "viewer",
    "member",
    "org_admin",
    "platform_admin",
    "token",
    "token_no_scope",
)


@dataclass
class World:
    """One org with a member of each role, a team, a throwaway user and two service tokens."""

    org: dict
    other_org: dict
    team: dict
    server: dict
    viewer: User
    member: User
    admin: User
    spare: User
    creds: dict[str, str | None]


@pytest.fixture(scope="module")
async def world(auth: AuthClient) -> World:
    """Build the org and callers once for the matrix."""
    org, other = await auth.create_org(), await auth.create_org()
    team = await auth.create_team(org["slug"])
    server = await auth.server(org["id"])
    viewer, member, admin, spare = [await auth.create_user() for _ in range(4)]
    await auth.add_member(team["name"], viewer, "viewer")
    await auth.add_org_member(org["slug"], viewer, "viewer")
    await auth.add_member(team["name"], member, "member")
    await auth.add_org_member(org["slug"], admin, "admin")
    await auth.add_org_member(org["slug"], spare, "member")
    token = await auth.service_token(org["slug"], [f"admin:org:{org['slug']}"])
    no_scope = await auth.service_token(other["slug"], [f"admin:org:{other['slug']}"])
    creds = {
        "anonymous": None,
        "viewer": viewer.token,
        "member": member.token,
        "org_admin": admin.token,
        "platform_admin": await auth.admin_token(),
        "token": token,
        "token_no_scope": no_scope,
    }
    return World(org, other, team, server, viewer, member, admin, spare, creds)


Body = Callable[[World], Any] | None


def row(method: str, path: str, body: Body, *statuses: int) -> tuple[str, str, Body, tuple]:
    """One endpoint and the status each caller in CALLERS gets."""
    assert len(statuses) == len(CALLERS)
    return method, path, body, statuses


def only_platform_admin(ok: int) -> tuple[int, ...]:
    """Statuses of an endpoint only the platform admin may call."""
    return 401, 403, 403, 403, ok, 403, 403


def org_admins(ok: int) -> tuple[int, ...]:
    """Statuses of an endpoint for the org's admins (users or its scoped token).

    Another org's token finds nothing there (docs/TENANCY.md)."""
    return 401, 403, 403, ok, ok, ok, 404


ORG_VIEWERS = (401, 200, 200, 200, 200, 200, 404)
SIGNED_IN = (401, 200, 200, 200, 200, 200, 200)
ORG = "/api/v1/orgs/{org}"
TEAM = "/api/v1/teams/{team}"
MATRIX = [
    row("GET", "/api/v1/auth/me", None, *SIGNED_IN),
    row("GET", "/api/v1/auth/verify", None, *SIGNED_IN),
    row("GET", "/api/v1/auth/setup", None, *(200,) * 7),
    row("GET", "/api/v1/auth/jwks.json", None, *(200,) * 7),
    row(
        "POST",
        "/api/v1/auth/setup",
        lambda w: {"username": unique("x"), "password": "Aa1!aaaaaaaa"},
        *(409,) * 7,
    ),
    row("POST", "/api/v1/auth/signing-keys/rotate", None, *only_platform_admin(201)),
    row("POST", "/api/v1/auth/mfa/enroll", None, 401, 201, 201, 201, 201, 403, 403),
    row("GET", "/api/v1/users", None, *only_platform_admin(200)),
    row("GET", "/api/v1/admin/users", None, *only_platform_admin(200)),
    row("POST", "/api/v1/users", lambda w: {"username": unique("u")}, *only_platform_admin(201)),
    # another user is not revealed: 404, as for one that does not exist
    row("GET", "/api/v1/users/{member_id}", None, 401, 404, 200, 404, 200, 404, 404),
    row(
        "PATCH",
        "/api/v1/users/{spare_id}",
        lambda w: {"display_name": "S"},
        *(401, 404, 404, 404, 200, 404, 404),
    ),
    row("POST", "/api/v1/users/{spare_id}/activate", None, *only_platform_admin(200)),
    row(
        "PATCH",
        "/api/v1/admin/users/{spare_id}/plan",
        lambda w: {"plan": "pro"},
        *only_platform_admin(200),
    ),
    row(
        "POST",
        "/api/v1/users/bulk/activate",
        lambda w: {"user_ids": [w.spare.id]},
        *only_platform_admin(200),
    ),
    row("GET", "/api/v1/orgs", None, *SIGNED_IN),
    row("POST", "/api/v1/orgs", lambda w: {"slug": unique("o")}, *only_platform_admin(201)),
    row("GET", ORG, None, *ORG_VIEWERS),
    row("PATCH", ORG, lambda w: {"display_name": "Org"}, *org_admins(200)),
    row(
        "PATCH",
        "/api/v1/admin/orgs/{org}/plan",
        lambda w: {"plan": "enterprise"},
        *only_platform_admin(200),
    ),
    row("POST", "/api/v1/admin/orgs/{org}/activate", None, *only_platform_admin(200)),
    row("GET", ORG + "/members", None, *ORG_VIEWERS),
    row("PATCH", ORG + "/members/{spare_id}", lambda w: {"role": "member"}, *org_admins(200)),
    row(
        "POST",
        ORG + "/users/invite",
        lambda w: {"email": f"{unique('i')}@example.com"},
        *org_admins(201),
    ),
    row("GET", ORG + "/roles", None, *ORG_VIEWERS),
    row("GET", ORG + "/tokens", None, *org_admins(200)),
    row(
        "POST",
        ORG + "/tokens",
        lambda w: {"name": "t", "scopes": [f"read:org:{w.org['slug']}"]},
        *org_admins(201),
    ),
    row("GET", ORG + "/areas", None, *ORG_VIEWERS),
    row("GET", "/api/v1/teams", None, *SIGNED_IN),
    row("GET", "/api/v1/groups", None, *SIGNED_IN),
    row(
        "POST",
        "/api/v1/teams",
        lambda w: {"name": unique("t"), "org": w.org["slug"]},
        *org_admins(201),
    ),
    row("GET", TEAM, None, *ORG_VIEWERS),
    row("PATCH", TEAM, lambda w: {"description": "d"}, *org_admins(200)),
    row("GET", TEAM + "/members", None, *ORG_VIEWERS),
    row("PATCH", TEAM + "/members/{member_id}", lambda w: {"role": "member"}, *org_admins(200)),
    row("GET", TEAM + "/grants", None, *ORG_VIEWERS),
    row(
        "POST",
        TEAM + "/grants",
        lambda w: {"server": w.server["name"], "permissions": ["read"]},
        *org_admins(201),
    ),
    row("GET", "/api/v1/keys", None, 401, 200, 200, 200, 200, 403, 403),
    row("GET", "/api/v1/tokens", None, *SIGNED_IN),
    row("POST", "/api/v1/keys", lambda w: {"name": "k"}, 401, 201, 201, 201, 201, 403, 403),
    row(
        "DELETE",
        "/api/v1/keys/00000000-0000-0000-0000-000000000000",
        None,
        401,
        404,
        404,
        404,
        404,
        403,
        403,
    ),
]


async def test_every_endpoint_answers_each_caller_with_the_expected_status(
    auth: AuthClient, world: World
) -> None:
    wrong: list[str] = []
    for method, template, body, statuses in MATRIX:
        path = template.format(
            org=world.org["slug"],
            team=world.team["name"],
            member_id=world.member.id,
            spare_id=world.spare.id,
        )
        for caller, expected in zip(CALLERS, statuses, strict=True):
            token = world.creds[caller]
            headers = auth.bearer(token) if token else {}
            json = body(world) if body else None
            resp = await auth.http.request(method, path, headers=headers, json=json)
            if resp.status_code != expected:
                wrong.append(f"{method} {template} as {caller}: {resp.status_code} != {expected}")
            elif expected >= 400:
                code = resp.json()["error"]["code"]
                want = {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT"}
                if code != want[expected]:
                    wrong.append(f"{method} {template} as {caller}: code {code}")
    assert not wrong, "\n".join(wrong)


async def test_only_an_owner_may_make_an_owner(auth: AuthClient, world: World) -> None:
    resp = await auth.http.patch(
        f"/api/v1/orgs/{world.org['slug']}/members/{world.spare.id}",
        json={"role": "owner"},
        headers=auth.bearer(world.admin.token),
    )
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "FORBIDDEN"


async def test_an_api_key_cannot_be_narrowed_to_someone_elses_team(
    auth: AuthClient, world: World
) -> None:
    other = await auth.create_team(world.org["slug"])
    resp = await auth.http.post(
        "/api/v1/keys",
        json={"name": "k", "teams": [other["name"]]},
        headers=auth.bearer(world.member.token),
    )
    assert resp.status_code == 422
    assert "teams" in resp.json()["error"]["details"]["fields"]


async def test_the_token_list_shows_only_orgs_one_administers(
    auth: AuthClient, world: World
) -> None:
    as_admin = await auth.call("GET", "/api/v1/tokens", world.admin.token)
    assert as_admin["items"] and {t["org_id"] for t in as_admin["items"]} == {world.org["id"]}
    as_member = await auth.call("GET", "/api/v1/tokens", world.member.token)
    assert as_member["items"] == []
