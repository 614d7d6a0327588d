"""Grants inherited from parent teams (with cycles refused) and server grants on service tokens."""

import httpx

from libs.devstack.harness import until
from tests.support.auth import AuthClient

CALL = "/api/v1/probe/servers/{server}/call"


async def call(probe: httpx.AsyncClient, token: str, server: dict, tool: str) -> int:
    """Status of a tool call on the other service."""
    resp = await probe.post(
        CALL.format(server=server["name"]),
        params={"id": server["id"], "org": server["org"], "tool": tool},
        headers={"Authorization": f"Bearer {token}"},
    )
    return resp.status_code


async def test_a_child_teams_members_inherit_the_parents_grants(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    org = await auth.create_org()
    parent = await auth.create_team(org["slug"])
    child = await auth.create_team(org["slug"], parent=parent["name"])
    grandchild = await auth.create_team(org["slug"], parent=child["name"])
    github, jira = await auth.server(org["id"]), await auth.server(org["id"])
    await auth.grant(parent["name"], github["name"], ["execute"], tools=["search"])
    await auth.grant(child["name"], jira["name"], ["execute"])
    bob = await auth.create_user()
    await auth.add_member(grandchild["name"], bob)
    me = (await probe.get("/api/v1/probe/whoami", headers=auth.bearer(bob.token))).json()
    held = {(g["team"], g["server"]) for g in me["grants"]}
    # inherited grants are held through the member's own team (so /mcp/{team} shows them)
    assert held == {(grandchild["name"], github["name"]), (grandchild["name"], jira["name"])}
    assert me["teams"] == [grandchild["name"]]
    assert await call(probe, bob.token, github, "search") == 200
    assert await call(probe, bob.token, github, "delete") == 403
    key = await auth.api_key(bob.token, teams=[grandchild["name"]])
    assert await call(probe, key, jira, "anything") == 200
    # a parent's members do not get the child's grants: the server is not there for them
    carol = await auth.create_user()
    await auth.add_member(parent["name"], carol)
    assert await call(probe, carol.token, jira, "anything") == 404


async def test_re_parenting_into_a_cycle_is_422(auth: AuthClient) -> None:
    org = await auth.create_org()
    top = await auth.create_team(org["slug"])
    mid = await auth.create_team(org["slug"], parent=top["name"])
    low = await auth.create_team(org["slug"], parent=mid["name"])
    admin = auth.bearer(await auth.admin_token())
    for parent in (low["name"], mid["name"], top["name"]):
        resp = await auth.http.patch(
            f"/api/v1/teams/{top['name']}", json={"parent": parent}, headers=admin
        )
        assert resp.status_code == 422
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
        assert "parent" in resp.json()["error"]["details"]["fields"]
    other = await auth.create_team(org["slug"])
    resp = await auth.http.patch(
        f"/api/v1/teams/{low['name']}", json={"parent": other["name"]}, headers=admin
    )
    assert resp.status_code == 200 and resp.json()["parent_id"] == other["id"]


async def test_a_service_token_carries_grants_its_org_holds(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    github = await auth.server(org["id"])
    await auth.grant(team["name"], github["name"], ["execute"], tools=["search", "read_file"])
    body = {
        "name": "ci",
        "scopes": [f"ci:org:{org['slug']}"],
        "grants": [{"server": github["name"], "permissions": ["execute"], "tools": ["search"]}],
    }
    created = await auth.call("POST", f"/api/v1/orgs/{org['slug']}/tokens", json=body, expect=201)
    bound = [{**body["grants"][0], "server_id": github["id"]}]
    assert created["grants"] == bound
    token = created["token"]
    assert await call(probe, token, github, "search") == 200
    assert await call(probe, token, github, "read_file") == 403
    listed = await auth.call("GET", f"/api/v1/orgs/{org['slug']}/tokens")
    assert listed["items"][0]["grants"] == bound and "token" not in listed["items"][0]

    await auth.call("DELETE", f"/api/v1/teams/{team['name']}/grants/{github['id']}", expect=204)

    async def revoked() -> bool:
        return await call(probe, token, github, "search") != 200

    await until(revoked, timeout=1.0, interval=0.02, what="the grant's revocation to apply")
    assert await call(probe, token, github, "search") == 404


async def test_service_token_grants_beyond_the_org_are_422(auth: AuthClient) -> None:
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    github = (await auth.server(org["id"]))["name"]
    await auth.grant(team["name"], github, ["execute"], tools=["search"])
    admin = auth.bearer(await auth.admin_token())
    for grants, field in (
        ([{"server": github, "permissions": ["execute"]}], "grants"),
        ([{"server": github, "permissions": ["write"], "tools": ["search"]}], "grants"),
        ([{"server": "gitlab", "permissions": ["read"]}], "grants"),
        ([{"server": github, "permissions": ["fly"]}], "grants.0.permissions.0"),
        ([{"permissions": ["read"]}], "grants.0.server"),
    ):
        body = {"name": "t", "scopes": [f"read:org:{org['slug']}"], "grants": grants}
        resp = await auth.http.post(f"/api/v1/orgs/{org['slug']}/tokens", json=body, headers=admin)
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
        assert field in resp.json()["error"]["details"]["fields"]
