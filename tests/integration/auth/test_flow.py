"""The whole flow across two services: every credential works elsewhere, and stops within 1 s."""

import httpx

from libs.devstack.harness import until
from tests.integration.auth.conftest import WHOAMI, refused_within
from tests.support.auth import AuthClient


async def test_every_credential_kind_works_against_another_service(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    carol = await auth.create_user()
    await auth.add_member(team["name"], carol)
    github = await auth.server(org["id"])
    await auth.grant(team["name"], github["name"], ["execute"], tools=["search"])
    key = await auth.api_key(carol.token, teams=[team["name"]])
    token = await auth.service_token(org["slug"], [f"ci:org:{org['slug']}"])
    for headers, kind in [
        (auth.bearer(carol.token), "user"),
        ({"X-API-Key": key}, "api_key"),
        (auth.bearer(key), "api_key"),
        (auth.bearer(token), "service_token"),
        (auth.bearer(auth.admin_api_token), "admin_token"),
    ]:
        resp = await probe.get(WHOAMI, headers=headers)
        assert resp.status_code == 200, (kind, resp.text)
        assert resp.json()["kind"] == kind
    path = f"/api/v1/probe/servers/{github['name']}/call"
    at = {"id": github["id"], "org": org["id"]}
    ok = await probe.post(path, params={**at, "tool": "search"}, headers={"X-API-Key": key})
    assert ok.status_code == 200
    other_tool = await probe.post(path, params={**at, "tool": "delete"}, headers={"X-API-Key": key})
    assert other_tool.status_code == 403
    assert other_tool.json()["error"]["code"] == "FORBIDDEN"


async def test_a_revoked_api_key_is_refused_by_another_service_within_a_second(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    dave = await auth.create_user()
    key = await auth.api_key(dave.token)
    assert (await probe.get(WHOAMI, headers={"X-API-Key": key})).status_code == 200
    keys = await auth.call("GET", "/api/v1/keys", dave.token)
    await auth.call("DELETE", f"/api/v1/keys/{keys['items'][0]['id']}", dave.token, expect=204)
    await refused_within(probe, {"X-API-Key": key}, 1.0)


async def test_a_revoked_service_token_is_refused_by_another_service_within_a_second(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    org = await auth.create_org()
    token = await auth.service_token(org["slug"], [f"read:org:{org['slug']}"])
    assert (await probe.get(WHOAMI, headers=auth.bearer(token))).status_code == 200
    listed = await auth.call("GET", f"/api/v1/orgs/{org['slug']}/tokens")
    token_id = listed["items"][0]["id"]
    await auth.call("DELETE", f"/api/v1/orgs/{org['slug']}/tokens/{token_id}", expect=204)
    await refused_within(probe, auth.bearer(token), 1.0)


async def test_a_suspended_users_jwt_and_key_are_refused_within_a_second(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    erin = await auth.create_user()
    key = await auth.api_key(erin.token)
    assert (await probe.get(WHOAMI, headers=auth.bearer(erin.token))).status_code == 200
    assert (await probe.get(WHOAMI, headers={"X-API-Key": key})).status_code == 200
    await auth.call("POST", f"/api/v1/users/{erin.id}/suspend")
    await refused_within(probe, auth.bearer(erin.token), 1.0)
    await refused_within(probe, {"X-API-Key": key}, 1.0)
    await auth.call("POST", f"/api/v1/users/{erin.id}/activate")
    resp = await probe.get(WHOAMI, headers={"X-API-Key": key})
    assert resp.status_code == 200


async def test_logout_ends_the_jwt_everywhere_within_a_second(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    frank = await auth.create_user()
    assert (await probe.get(WHOAMI, headers=auth.bearer(frank.token))).status_code == 200
    await auth.call("POST", "/api/v1/auth/logout", frank.token)
    await refused_within(probe, auth.bearer(frank.token), 1.0)


async def test_a_removed_grant_stops_the_tool_call_elsewhere(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    gina = await auth.create_user()
    await auth.add_member(team["name"], gina)
    jira = await auth.server(org["id"])
    await auth.grant(team["name"], jira["name"], ["execute"])
    path = f"/api/v1/probe/servers/{jira['name']}/call"
    params = {"id": jira["id"], "org": org["id"], "tool": "x"}
    headers = auth.bearer(gina.token)
    assert (await probe.post(path, params=params, headers=headers)).status_code == 200
    await auth.call("DELETE", f"/api/v1/teams/{team['name']}/grants/{jira['name']}", expect=204)

    async def gone() -> bool:
        # without a grant the server is not there for the caller
        return (await probe.post(path, params=params, headers=headers)).status_code == 404

    await until(gone, timeout=1.0, interval=0.02, what="a 404 once the grant is gone")


async def test_the_rotated_admin_token_replaces_the_old_one(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    old = auth.admin_api_token
    body = await auth.call("POST", "/api/v1/auth/admin-token/rotate", expect=201)
    assert body["token"].startswith("sba_")
    auth.admin_api_token = body["token"]
    assert (await probe.get(WHOAMI, headers=auth.bearer(body["token"]))).status_code == 200
    await refused_within(probe, auth.bearer(old), 1.0)
