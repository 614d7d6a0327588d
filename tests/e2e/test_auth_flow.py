"""Auth through nginx: every credential kind works on another service and dies within a second."""

import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from libs.devstack.harness import until
from libs.devstack.stack import Stack
from tests.e2e.conftest import SecuredStack
from tests.support.auth import AuthClient, unique

REVOKED_WITHIN_S = 1.0


@pytest.fixture
async def auth(e2e_stack: Stack) -> AsyncIterator[AuthClient]:
    """The auth client of tests/support, pointed at nginx instead of an in-process service."""
    async with httpx.AsyncClient(base_url=e2e_stack.url, timeout=10) as http:
        client = AuthClient(e2e_stack.url, http, admin_api_token="")
        client.registry_url = e2e_stack.url  # nginx routes the registry's paths too
        yield client


async def registry_status(http: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """Status of a credential-protected registry route, reached through nginx."""
    return (await http.get("/api/v1/servers", headers=headers)).status_code


async def refused_after(http: httpx.AsyncClient, headers: dict[str, str]) -> float:
    """Seconds until the registry answers 401 for `headers` (fails after 5 s)."""
    start = time.monotonic()

    async def refused() -> bool:
        return await registry_status(http, headers) == 401

    await until(refused, timeout=5, interval=0.02, what="the registry to answer 401")
    return time.monotonic() - start


async def test_every_credential_works_on_the_registry_and_revocation_reaches_it_within_1s(
    auth: AuthClient,
) -> None:
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    alice = await auth.create_user()
    await auth.add_member(team["name"], alice, "member")
    weather = await auth.server(org["id"])
    await auth.grant(team["name"], weather["name"], ["read", "execute"])
    key = await auth.api_key(alice.token, teams=[team["name"]])
    token = await auth.service_token(org["slug"], [f"read:org:{org['slug']}"])
    http = auth.http

    as_jwt = auth.bearer(alice.token)
    as_key = {"X-API-Key": key}
    as_token = auth.bearer(token)
    for headers in (as_jwt, as_key, auth.bearer(key), as_token):
        assert await registry_status(http, headers) == 200
    assert await registry_status(http, {}) == 401
    assert await registry_status(http, auth.bearer("sbk_" + "x" * 40)) == 401

    me = await auth.call("GET", "/api/v1/auth/me", alice.token)
    assert me["user"]["username"] == alice.username

    keys = await auth.call("GET", "/api/v1/keys", alice.token)
    key_id = next(k["id"] for k in keys["items"] if key.startswith(k["prefix"]))
    await auth.call("DELETE", f"/api/v1/keys/{key_id}", alice.token, expect=204)
    assert await refused_after(http, as_key) <= REVOKED_WITHIN_S

    tokens = await auth.call("GET", f"/api/v1/orgs/{org['slug']}/tokens")
    token_id = next(t["id"] for t in tokens["items"] if token.startswith(t["prefix"]))
    await auth.call("DELETE", f"/api/v1/orgs/{org['slug']}/tokens/{token_id}", expect=204)
    assert await refused_after(http, as_token) <= REVOKED_WITHIN_S

    await auth.call("POST", f"/api/v1/users/{alice.id}/suspend")
    assert await refused_after(http, as_jwt) <= REVOKED_WITHIN_S


async def test_a_bad_login_and_a_bad_body_get_the_error_envelope_through_nginx(
    auth: AuthClient,
) -> None:
    resp = await auth.http.post(
        "/api/v1/auth/login", json={"username": unique("nobody"), "password": "wrong-password"}
    )
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "UNAUTHENTICATED"
    resp = await auth.http.post(
        "/api/v1/users", json={"username": ""}, headers=auth.bearer(await auth.admin_token())
    )
    assert resp.status_code == 422
    assert "username" in resp.json()["error"]["details"]["fields"]


async def test_a_failed_sign_in_counts_against_the_address_nginx_saw_not_a_claimed_one(
    auth: AuthClient, e2e_stack: SecuredStack
) -> None:
    claimed = {"X-Real-IP": "203.0.113.77", "X-Forwarded-For": "198.51.100.77"}
    body = {"username": unique("nobody"), "password": "Wrong-Passw0rd!"}
    resp = await auth.http.post("/api/v1/auth/login", json=body, headers=claimed)
    assert resp.status_code == 401
    conn = await asyncpg.connect(e2e_stack.admin_database_url)
    try:
        sources = {r["source"] for r in await conn.fetch("SELECT source FROM auth.login_failures")}
    finally:
        await conn.close()
    assert "127.0.0.1" in sources
    assert not sources & {"203.0.113.77", "198.51.100.77"}
