"""Grants bind a server id of the team's own org (or one shared with it): docs/TENANCY.md."""

import uuid

from libs.common import bus as busmod
from libs.common import db
from services.auth import binding
from tests.support.auth import AuthClient


async def org_admin_with_team(auth: AuthClient) -> tuple[dict, dict, str]:
    """A new org, a team of it, and the JWT of an admin of the org (not a platform admin)."""
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    admin = await auth.create_user()
    await auth.add_org_member(org["slug"], admin, "admin")
    return org, team, admin.token


async def test_granting_another_orgs_server_answers_404_as_if_it_did_not_exist(
    auth: AuthClient,
) -> None:
    org_a, team_a, admin_a = await org_admin_with_team(auth)
    org_b = await auth.create_org()
    theirs = await auth.server(org_b["id"])
    path = f"/api/v1/teams/{team_a['name']}/grants"
    for ref in (theirs["name"], theirs["id"], "no-such-server", str(uuid.uuid4())):
        body = {"server": ref, "permissions": ["read", "execute", "write"]}
        resp = await auth.http.post(path, json=body, headers=auth.bearer(admin_a))
        assert resp.status_code == 404, (ref, resp.text)
        assert resp.json()["error"]["code"] == "NOT_FOUND"
    # not even a platform admin can bind one org's team to another org's server
    body = {"server": theirs["name"], "permissions": ["read"]}
    resp = await auth.http.post(path, json=body, headers=auth.bearer(await auth.admin_token()))
    assert resp.status_code == 404
    assert (await auth.call("GET", path))["items"] == []


async def test_a_grant_is_bound_to_the_server_id_of_the_teams_org(auth: AuthClient) -> None:
    org, team, admin = await org_admin_with_team(auth)
    ours = await auth.server(org["id"])
    path = f"/api/v1/teams/{team['name']}/grants"
    body = {"server": ours["id"], "permissions": ["execute"], "tools": ["search"]}
    created = await auth.call("POST", path, admin, json=body, expect=201)
    assert created["server"] == ours["name"] and created["server_id"] == ours["id"]
    assert created["bound"] is True


async def test_a_shared_server_may_be_granted_read_and_execute_but_never_write(
    auth: AuthClient,
) -> None:
    org_a, team_a, admin_a = await org_admin_with_team(auth)
    owner = await auth.create_org()
    lent = await auth.server(owner["id"])
    path = f"/api/v1/teams/{team_a['name']}/grants"
    body = {"server": lent["name"], "permissions": ["read", "execute"]}
    resp = await auth.http.post(path, json=body, headers=auth.bearer(admin_a))
    assert resp.status_code == 404  # not shared yet: not there for org A
    await auth.share(lent["name"], org_a["slug"])
    created = await auth.call("POST", path, admin_a, json=body, expect=201)
    assert created["server_id"] == lent["id"]
    resp = await auth.http.post(
        path, json={**body, "permissions": ["write"]}, headers=auth.bearer(admin_a)
    )
    assert resp.status_code == 422
    assert "permissions" in resp.json()["error"]["details"]["fields"]
    platform = await auth.server(None)
    await auth.share(platform["name"], org_a["id"])
    body = {"server": platform["name"], "permissions": ["execute"]}
    assert (await auth.call("POST", path, admin_a, json=body, expect=201))["bound"] is True


async def test_grants_stored_by_name_are_bound_within_their_org_and_foreign_names_stay_inert(
    auth: AuthClient,
) -> None:
    org, team, _ = await org_admin_with_team(auth)
    member = await auth.create_user()
    await auth.add_member(team["name"], member)
    ours = await auth.server(org["id"])
    theirs = await auth.server((await auth.create_org())["id"])
    settings = auth.settings  # type: ignore[attr-defined]
    async with db.open_pool(settings) as pool, busmod.connect(settings, name="binder") as bus:
        async with pool.acquire() as conn:
            team_id = await conn.fetchval("SELECT id FROM auth.teams WHERE name = $1", team["name"])
            for name in (ours["name"], theirs["name"]):  # as stored before grants had ids
                await conn.execute(
                    "INSERT INTO auth.grants (id, team_id, server, permissions)"
                    " VALUES ($1, $2, $3, $4)",
                    uuid.uuid4(),
                    team_id,
                    name,
                    ["read", "execute"],
                )
        me = await auth.call("GET", "/api/v1/auth/me", member.token)
        assert me["principal"]["grants"] == []  # unbound grants give nothing
        bound, left = await binding.bind_unbound(pool, bus)
    assert (bound, left) == (1, 1)
    me = await auth.call("GET", "/api/v1/auth/me", member.token)
    assert [(g["server"], g["server_id"]) for g in me["principal"]["grants"]] == [
        (ours["name"], ours["id"])
    ]
    listed = await auth.call("GET", f"/api/v1/teams/{team['name']}/grants")
    assert {g["server"]: g["bound"] for g in listed["items"]} == {
        ours["name"]: True,
        theirs["name"]: False,
    }


async def test_another_orgs_team_org_and_tokens_answer_404_to_an_org_admin(
    auth: AuthClient,
) -> None:
    _, _, admin_a = await org_admin_with_team(auth)
    org_b, team_b, _ = await org_admin_with_team(auth)
    token = await auth.call(
        "POST",
        f"/api/v1/orgs/{org_b['slug']}/tokens",
        json={"name": "t", "scopes": [f"read:org:{org_b['slug']}"]},
        expect=201,
    )
    for method, path in (
        ("GET", f"/api/v1/orgs/{org_b['slug']}"),
        ("GET", f"/api/v1/orgs/{org_b['id']}/members"),
        ("GET", f"/api/v1/teams/{team_b['name']}"),
        ("GET", f"/api/v1/teams/{team_b['id']}/grants"),
        ("DELETE", f"/api/v1/teams/{team_b['name']}"),
        ("GET", f"/api/v1/orgs/{org_b['slug']}/areas/{team_b['name']}"),
        ("DELETE", f"/api/v1/orgs/{org_b['slug']}/tokens/{token['id']}"),
    ):
        resp = await auth.http.request(method, path, headers=auth.bearer(admin_a))
        assert resp.status_code == 404, (method, path, resp.text)
        assert resp.json()["error"]["code"] == "NOT_FOUND"
