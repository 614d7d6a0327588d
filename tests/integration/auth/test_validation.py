"""Bad bodies and parameters answer 400/415/422 with field details, never 500."""

import io

import pytest
import structlog

from libs.common import log as logmod
from tests.support.auth import AuthClient

BAD_BODIES = [
    ("POST", "/api/v1/auth/login", {"password": "x"}, "body"),
    ("POST", "/api/v1/auth/login", {"username": "a"}, "password"),
    ("POST", "/api/v1/auth/setup", {"username": "", "password": "x"}, "username"),
    ("POST", "/api/v1/auth/refresh", {}, "refresh_token"),
    ("POST", "/api/v1/users", {"username": "bad name!"}, "username"),
    ("POST", "/api/v1/users", {"username": "okname", "email": "not-an-email"}, "email"),
    ("POST", "/api/v1/users", {"username": "okname2", "password": "short"}, "password"),
    ("POST", "/api/v1/orgs", {"slug": "Bad Slug"}, "slug"),
    ("POST", "/api/v1/teams", {"name": ""}, "name"),
    ("POST", "/api/v1/keys", {"name": "k", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ("POST", "/api/v1/keys", {"name": "k", "expires_at": "tomorrow"}, "expires_at"),
    ("POST", "/api/v1/users/bulk/suspend", {"user_ids": []}, "user_ids"),
    ("POST", "/api/v1/users/bulk/suspend", {"user_ids": ["nope"]}, "user_ids"),
    ("PATCH", "/api/v1/users/admin/role", {"role": "king"}, "role"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), BAD_BODIES)
async def test_an_invalid_body_is_422_with_the_field_named(
    auth: AuthClient, method: str, path: str, body: dict, field: str
) -> None:
    headers = auth.bearer(await auth.admin_token())
    resp = await auth.http.request(method, path, json=body, headers=headers)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert any(key.split(".")[0] == field for key in error["details"]["fields"]), error


async def test_grants_team_bodies_and_tokens_are_validated(auth: AuthClient) -> None:
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    server = (await auth.server(org["id"]))["name"]
    cases = [
        (f"/api/v1/teams/{team['name']}/grants", {"server": server, "permissions": ["fly"]}),
        (f"/api/v1/teams/{team['name']}/grants", {"server": server, "permissions": []}),
        (f"/api/v1/orgs/{org['slug']}/tokens", {"name": "t", "scopes": ["everything"]}),
        (f"/api/v1/orgs/{org['slug']}/tokens", {"name": "t", "scopes": ["read:org:other"]}),
        (f"/api/v1/orgs/{org['slug']}/members", {"user": "x", "role": "emperor"}),
    ]
    user = await auth.create_user()
    await auth.add_org_member(org["slug"], user, "admin")
    for path, body in cases:
        resp = await auth.http.post(path, json=body, headers=auth.bearer(user.token))
        assert resp.status_code == 422, (path, resp.text)
        assert resp.json()["error"]["details"]["fields"]
    grants = await auth.call("GET", f"/api/v1/teams/{team['name']}/grants")
    assert grants["items"] == []


async def test_unparseable_json_is_400_and_a_form_is_415(auth: AuthClient) -> None:
    resp = await auth.http.post(
        "/api/v1/auth/login", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
    resp = await auth.http.post("/api/v1/auth/login", data={"username": "a", "password": "b"})
    assert resp.status_code == 415
    resp = await auth.http.post("/api/v1/auth/login", json=["a", "b"])
    assert resp.status_code == 422


async def test_bad_list_parameters_are_422(auth: AuthClient) -> None:
    headers = auth.bearer(await auth.admin_token())
    for params in ({"page": "zero"}, {"page_size": "1000"}, {"sort": "password_hash"}):
        resp = await auth.http.get("/api/v1/users", params=params, headers=headers)
        assert resp.status_code == 422
        assert resp.json()["error"]["details"]["fields"]


async def test_unknown_ids_are_404_not_500(auth: AuthClient) -> None:
    headers = auth.bearer(await auth.admin_token())
    for method, path in [
        ("GET", "/api/v1/users/nobody-here"),
        ("GET", "/api/v1/orgs/no-such-org"),
        ("GET", "/api/v1/teams/no-such-team"),
        ("DELETE", "/api/v1/keys/not-a-uuid"),
        ("DELETE", "/api/v1/orgs/no-such-org/tokens/not-a-uuid"),
    ]:
        resp = await auth.http.request(method, path, headers=headers)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json()["error"]["code"] == "NOT_FOUND"


async def test_users_list_filters_and_pages(auth: AuthClient) -> None:
    org = await auth.create_org()
    made = [await auth.create_user() for _ in range(3)]
    for user in made:
        await auth.add_org_member(org["slug"], user, "member")
    await auth.call("POST", "/api/v1/users/bulk/suspend", json={"user_ids": [made[0].id]})
    listed = await auth.call(
        "GET", "/api/v1/users", params={"org": org["slug"], "page_size": 2, "sort": "username"}
    )
    # the three users and the admin, who created the org and owns it
    assert listed["total"] == 4 and len(listed["items"]) == 2 and listed["pages"] == 2
    suspended = await auth.call(
        "GET", "/api/v1/users", params={"org": org["slug"], "status": "suspended"}
    )
    assert [u["id"] for u in suspended["items"]] == [made[0].id]
    found = await auth.call("GET", "/api/v1/users", params={"q": made[1].username})
    assert [u["id"] for u in found["items"]] == [made[1].id]


async def test_no_password_token_or_key_appears_in_the_logs(auth: AuthClient) -> None:
    buffer = io.StringIO()
    logmod.configure("auth", "debug", stream=buffer)
    try:
        user = await auth.create_user()
        session = await auth.login(user.username, user.password)
        bad = {"username": user.username, "password": "Secret-Wr0ng-Guess!"}
        await auth.http.post("/api/v1/auth/login", json=bad)
        key = await auth.api_key(user.token)
        org = await auth.create_org()
        token = await auth.service_token(org["slug"], [f"read:org:{org['slug']}"])
        await auth.http.get("/api/v1/auth/verify", headers={"X-API-Key": key})
        await auth.http.get("/api/v1/auth/verify", headers=auth.bearer("sbk_" + "Z" * 40))
        await auth.http.post(
            "/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}
        )
    finally:
        structlog.reset_defaults()
    output = buffer.getvalue()
    assert "http_request" in output and "login_failed" in output
    for secret in [
        user.password,
        "Secret-Wr0ng-Guess!",
        session["access_token"],
        session["refresh_token"],
        key,
        token,
        "Z" * 40,
    ]:
        assert secret not in output


async def test_nul_characters_are_refused_not_a_500(auth: AuthClient) -> None:
    headers = auth.bearer(await auth.admin_token())
    login = await auth.http.post(
        "/api/v1/auth/login", json={"username": "a\u0000b", "password": "x"}
    )
    assert login.status_code == 422
    path = await auth.http.get("/api/v1/users/a%00b", headers=headers)
    assert path.status_code == 400
    query = await auth.http.get("/api/v1/users", params={"q": "a\u0000"}, headers=headers)
    assert query.status_code == 400
    assert query.json()["error"]["code"] == "VALIDATION_ERROR"
