"""The core flow: setup, login, orgs, teams, grants, keys, tokens and introspection."""

from tests.support.auth import ADMIN_PASSWORD, ADMIN_USERNAME, AuthClient


async def test_setup_a_second_time_answers_conflict(auth: AuthClient) -> None:
    await auth.admin_token()
    resp = await auth.http.post(
        "/api/v1/auth/setup", json={"username": "other", "password": ADMIN_PASSWORD}
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "CONFLICT"


async def test_login_returns_a_bearer_jwt_that_me_accepts(auth: AuthClient) -> None:
    await auth.admin_token()
    body = await auth.login(ADMIN_USERNAME, ADMIN_PASSWORD)
    assert body["token_type"] == "bearer"
    assert body["access_token"].count(".") == 2
    assert body["refresh_token"].startswith("sbr_")
    me = await auth.call("GET", "/api/v1/auth/me", body["access_token"])
    assert me["user"]["username"] == ADMIN_USERNAME
    assert me["principal"]["platform_role"] == "platform_admin"


async def test_a_team_member_sees_the_grants_of_the_team(auth: AuthClient) -> None:
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    alice = await auth.create_user()
    await auth.add_member(team["name"], alice, "member")
    github = await auth.server(org["id"])
    await auth.grant(team["name"], github["name"], ["read", "execute"], tools=["search"])
    me = await auth.call("GET", "/api/v1/auth/me", alice.token)
    principal = me["principal"]
    assert principal["orgs"] == {org["id"]: "member"}
    assert principal["teams"] == [team["name"]]
    assert principal["team_orgs"] == [[org["id"], team["name"]]]
    assert principal["grants"] == [
        {
            "team": team["name"],
            "server": github["name"],
            "permissions": ["execute", "read"],
            "tools": ["search"],
            "server_id": github["id"],
            "org": org["id"],
        }
    ]


async def test_an_api_key_and_a_service_token_authenticate(auth: AuthClient) -> None:
    org = await auth.create_org()
    bob = await auth.create_user()
    await auth.add_org_member(org["slug"], bob, "viewer")
    key = await auth.api_key(bob.token)
    assert key.startswith("sbk_")
    resp = await auth.http.get("/api/v1/auth/verify", headers={"X-API-Key": key})
    assert resp.status_code == 200
    assert resp.json()["principal"]["kind"] == "api_key"
    token = await auth.service_token(org["slug"], [f"read:org:{org['slug']}"])
    assert token.startswith("sbt_")
    resp = await auth.http.get(f"/api/v1/orgs/{org['slug']}", headers=auth.bearer(token))
    assert resp.status_code == 200
    assert resp.json()["slug"] == org["slug"]


async def test_jwks_lists_the_signing_key(auth: AuthClient) -> None:
    resp = await auth.http.get("/api/v1/auth/jwks.json")
    assert resp.status_code == 200
    keys = resp.json()["keys"]
    assert keys and keys[0]["kty"] == "OKP" and keys[0]["alg"] == "EdDSA" and "d" not in keys[0]


async def test_an_invite_token_makes_the_user_a_member_once(auth: AuthClient) -> None:
    org = await auth.create_org()
    invite = await auth.call(
        "POST",
        f"/api/v1/orgs/{org['slug']}/users/invite",
        json={"email": "new.person@example.com", "role": "VIEWER"},
        expect=201,
    )
    assert invite["invite_token"].startswith("sbi_") and invite["status"] == "pending"
    user = await auth.create_user()
    body = {"token": invite["invite_token"]}
    member = await auth.call("POST", "/api/v1/auth/invites/accept", user.token, json=body)
    assert member["role"] == "viewer" and member["status"] == "active"
    again = await auth.http.post(
        "/api/v1/auth/invites/accept", json=body, headers=auth.bearer(user.token)
    )
    assert again.status_code == 404
    me = await auth.call("GET", "/api/v1/auth/me", user.token)
    assert me["principal"]["orgs"] == {org["id"]: "viewer"}


async def test_suspending_an_org_drops_its_roles_grants_and_tokens(auth: AuthClient) -> None:
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    user = await auth.create_user()
    await auth.add_member(team["name"], user)
    wiki = await auth.server(org["id"])
    await auth.grant(team["name"], wiki["name"], ["read"])
    token = await auth.service_token(org["slug"], [f"read:org:{org['slug']}"])
    await auth.call("POST", f"/api/v1/admin/orgs/{org['slug']}/suspend")
    me = await auth.call("GET", "/api/v1/auth/me", user.token)
    assert me["principal"]["orgs"] == {} and me["principal"]["grants"] == []
    resp = await auth.http.get("/api/v1/auth/verify", headers=auth.bearer(token))
    assert resp.status_code == 401
    await auth.call("POST", f"/api/v1/admin/orgs/{org['slug']}/activate")
    me = await auth.call("GET", "/api/v1/auth/me", user.token)
    assert [g["server"] for g in me["principal"]["grants"]] == [wiki["name"]]


async def test_a_deleted_org_is_gone_and_its_slug_stays_taken(auth: AuthClient) -> None:
    org = await auth.create_org()
    await auth.call("DELETE", f"/api/v1/orgs/{org['slug']}", expect=204)
    resp = await auth.http.get(
        f"/api/v1/orgs/{org['slug']}", headers=auth.bearer(await auth.admin_token())
    )
    assert resp.status_code == 404
    again = await auth.http.post(
        "/api/v1/orgs",
        json={"slug": org["slug"]},
        headers=auth.bearer(await auth.admin_token()),
    )
    assert again.status_code == 409
