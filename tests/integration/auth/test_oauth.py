"""OAuth 2.1 for MCP clients end to end, and every refusal.

Register, authorize with the browser session, exchange with PKCE, call a resource server built
with build_app, refresh, revoke; and every refusal."""

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import jwt
import pytest
from starlette.routing import Route

from libs.common.app import build_app
from libs.common.authn import CSRF_COOKIE
from libs.devstack.harness import serving, settings_for
from services.auth.signing import KeyStore
from tests.integration.auth.conftest import (
    EMPTY_MIGRATIONS,
    WHOAMI,
    ProbeSettings,
    call_tool,
    refused_within,
    whoami,
)
from tests.support.auth import TEST_ENV, AuthClient, User, auth_service, unique

REDIRECT = "http://127.0.0.1:47123/callback"


def bearer_of(token: str) -> dict[str, str]:
    """The Authorization header carrying `token`."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def mcp(
    auth: AuthClient, pg_url: str, nats_url: str, namespace: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A resource server (like the gateway) whose verifier also accepts its /mcp audience."""
    settings = settings_for(ProbeSettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace)
    resource = auth.settings.mcp_resource  # type: ignore[attr-defined]

    @asynccontextmanager
    async def extra(state: dict[str, Any]) -> AsyncIterator[None]:
        state["verifier"].accept_audience(resource, auth.settings.oauth_issuer)  # type: ignore[attr-defined]
        yield None

    routes = [
        Route(WHOAMI, whoami, methods=["GET"]),
        Route("/api/v1/probe/servers/{server}/call", call_tool, methods=["POST"]),
    ]
    app = build_app(settings, routes, migrations=EMPTY_MIGRATIONS, extra=extra)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


def pkce() -> tuple[str, str]:
    """A code verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def register(auth: AuthClient, redirect: str = REDIRECT) -> str:
    """Register a public client; its client_id."""
    resp = await auth.http.post(
        "/oauth/register", json={"client_name": "Test MCP client", "redirect_uris": [redirect]}
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["token_endpoint_auth_method"] == "none" and "client_secret" not in body
    return body["client_id"]


@asynccontextmanager
async def browser_of(auth: AuthClient, user: User) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in to auth with the login form (session + CSRF cookies)."""
    async with httpx.AsyncClient(base_url=auth.url, timeout=10) as browser:
        await browser.get("/api/v1/auth/login-form")
        data = {
            "username": user.username,
            "password": user.password,
            "csrf_token": browser.cookies[CSRF_COOKIE],
        }
        assert (await browser.post("/api/v1/auth/login-form", data=data)).status_code == 200
        yield browser


def authorize_params(client_id: str, challenge: str, **extra: str) -> dict[str, str]:
    """A complete authorization request."""
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": "http://localhost:8080/mcp",
        "scope": "mcp",
        "state": "st-" + secrets.token_hex(4),
        **extra,
    }


async def approve(browser: httpx.AsyncClient, params: dict[str, str]) -> dict[str, list[str]]:
    """Open the consent page, allow, and return the query the client's redirect URI received."""
    page = await browser.get("/oauth/authorize", params=params)
    assert page.status_code == 200 and "Allow" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    form = {**params, "csrf_token": browser.cookies[CSRF_COOKIE], "decision": "approve"}
    resp = await browser.post("/oauth/authorize", data=form)
    assert resp.status_code == 303
    location = urlsplit(resp.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return parse_qs(location.query)


async def code_for(
    auth: AuthClient, user: User, client_id: str, challenge: str, **extra: str
) -> str:
    """Sign in, consent and return the authorization code."""
    async with browser_of(auth, user) as browser:
        query = await approve(browser, authorize_params(client_id, challenge, **extra))
    return query["code"][0]


async def exchange(auth: AuthClient, client_id: str, code: str, verifier: str) -> httpx.Response:
    """POST /oauth/token with the authorization code (form-encoded)."""
    return await auth.http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
            "code_verifier": verifier,
            "resource": "http://localhost:8080/mcp",
        },
    )


async def fresh_code(auth: AuthClient) -> tuple[str, str, str]:
    """A new user's code for a newly registered client: (client_id, code, verifier)."""
    user = await auth.create_user()
    client_id = await register(auth)
    verifier, challenge = pkce()
    return client_id, await code_for(auth, user, client_id, challenge), verifier


async def fresh_grant(auth: AuthClient) -> tuple[str, dict[str, Any]]:
    """A new user's tokens for a newly registered client: (client_id, token response)."""
    client_id, code, verifier = await fresh_code(auth)
    return client_id, (await exchange(auth, client_id, code, verifier)).json()


async def test_the_metadata_names_every_endpoint_and_requires_s256(auth: AuthClient) -> None:
    resp = await auth.http.get("/.well-known/oauth-authorization-server")
    assert resp.status_code == 200
    meta = resp.json()
    assert meta["issuer"] == "http://localhost:8080"
    for name in ("authorization", "token", "registration", "revocation"):
        assert meta[f"{name}_endpoint"].startswith("http://localhost:8080/oauth/")
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint_auth_methods_supported"] == ["none"]
    assert meta["jwks_uri"] == "http://localhost:8080/.well-known/jwks.json"


async def test_the_whole_flow_register_authorize_exchange_use_refresh_revoke(
    auth: AuthClient, mcp: httpx.AsyncClient, probe: httpx.AsyncClient
) -> None:
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    alice = await auth.create_user()
    await auth.add_member(team["name"], alice)
    github = await auth.server(org["id"])
    await auth.grant(team["name"], github["name"], ["execute"], tools=["search"])
    client_id = await register(auth)
    verifier, challenge = pkce()

    async with httpx.AsyncClient(base_url=auth.url) as stranger:
        params = authorize_params(client_id, challenge)
        resp = await stranger.get("/oauth/authorize", params=params)
        assert resp.status_code == 303
        assert resp.headers["location"].startswith("/api/v1/auth/login-form?next=")
    async with browser_of(auth, alice) as browser:
        params = authorize_params(client_id, challenge)
        query = await approve(browser, params)
    assert query["state"] == [params["state"]] and query["iss"] == ["http://localhost:8080"]

    resp = await exchange(auth, client_id, query["code"][0], verifier)
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    tokens = resp.json()
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "mcp"
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    me = await mcp.get(WHOAMI, headers=bearer)
    assert me.status_code == 200 and me.json()["user_id"] == alice.id
    call = f"/api/v1/probe/servers/{github['name']}/call"
    at = {"id": github["id"], "org": org["id"]}
    resp = await mcp.post(call, params={**at, "tool": "search"}, headers=bearer)
    assert resp.status_code == 200
    denied = await mcp.post(call, params={**at, "tool": "delete"}, headers=bearer)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
    # the audience is the gateway: other services and auth's own API refuse the token
    for other, path in ((probe, WHOAMI), (auth.http, "/api/v1/auth/me")):
        resp = await other.get(path, headers=bearer)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "UNAUTHENTICATED"

    body = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    resp = await auth.http.post("/oauth/token", data={**body, "client_id": client_id})
    assert resp.status_code == 200
    fresh = resp.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert (await mcp.get(WHOAMI, headers=bearer)).status_code == 200  # the grant goes on
    # the API's refresh endpoint never turns an MCP client's grant into a platform token
    api = await auth.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": fresh["refresh_token"]}
    )
    assert api.status_code == 401 and api.json()["error"]["code"] == "UNAUTHENTICATED"

    other_client = await register(auth)
    foreign = {"token": fresh["refresh_token"], "client_id": other_client}
    assert (await auth.http.post("/oauth/revoke", data=foreign)).status_code == 200
    assert (await mcp.get(WHOAMI, headers=bearer)).status_code == 200  # not that client's
    revoke = {"token": fresh["refresh_token"], "client_id": client_id}
    resp = await auth.http.post("/oauth/revoke", data=revoke)
    assert resp.status_code == 200
    await refused_within(mcp, bearer_of(fresh["access_token"]), 1.0)
    await refused_within(mcp, bearer_of(tokens["access_token"]), 1.0)
    again = await auth.http.post("/oauth/token", data={**body, "client_id": client_id})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


async def test_revoking_the_access_token_ends_the_grant(
    auth: AuthClient, mcp: httpx.AsyncClient
) -> None:
    client_id, tokens = await fresh_grant(auth)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await mcp.get(WHOAMI, headers=bearer)).status_code == 200
    form = {"token": tokens["access_token"], "client_id": client_id}
    assert (await auth.http.post("/oauth/revoke", data=form)).status_code == 200
    await refused_within(mcp, bearer_of(tokens["access_token"]), 1.0)
    body = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    resp = await auth.http.post("/oauth/token", data={**body, "client_id": client_id})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


async def test_a_replayed_refresh_token_ends_the_grant(
    auth: AuthClient, mcp: httpx.AsyncClient
) -> None:
    client_id, tokens = await fresh_grant(auth)
    body = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    body["client_id"] = client_id
    fresh = (await auth.http.post("/oauth/token", data=body)).json()
    replay = await auth.http.post("/oauth/token", data=body)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    await refused_within(mcp, bearer_of(fresh["access_token"]), 1.0)
    after = {**body, "refresh_token": fresh["refresh_token"]}
    resp = await auth.http.post("/oauth/token", data=after)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


async def test_a_wrong_code_verifier_is_refused(auth: AuthClient) -> None:
    client_id, code, verifier = await fresh_code(auth)
    wrong, _ = pkce()
    resp = await exchange(auth, client_id, code, wrong)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    missing = await exchange(auth, client_id, code, "")
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    assert "code_verifier" in missing.json()["details"]["fields"]


async def test_a_reused_code_is_refused_and_ends_the_grant_it_opened(
    auth: AuthClient, mcp: httpx.AsyncClient
) -> None:
    client_id, code, verifier = await fresh_code(auth)
    first = await exchange(auth, client_id, code, verifier)
    assert first.status_code == 200
    second = await exchange(auth, client_id, code, verifier)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    await refused_within(mcp, bearer_of(first.json()["access_token"]), 1.0)


async def test_a_redirect_uri_mismatch_is_refused(auth: AuthClient) -> None:
    user = await auth.create_user()
    client_id = await register(auth)
    verifier, challenge = pkce()
    async with browser_of(auth, user) as browser:
        params = authorize_params(client_id, challenge, redirect_uri="http://127.0.0.1:1/evil")
        resp = await browser.get("/oauth/authorize", params=params)
        assert resp.status_code == 400  # never redirected to an unregistered URI
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
        assert "redirect_uri" in resp.json()["error"]["details"]["fields"]
        code = (await approve(browser, authorize_params(client_id, challenge)))["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://127.0.0.1:47123/other",
        "client_id": client_id,
        "code_verifier": verifier,
    }
    resp = await auth.http.post("/oauth/token", data=form)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


async def test_an_authorization_request_without_pkce_s256_is_refused(auth: AuthClient) -> None:
    user = await auth.create_user()
    client_id = await register(auth)
    verifier, challenge = pkce()
    async with browser_of(auth, user) as browser:
        for params in (
            {
                k: v
                for k, v in authorize_params(client_id, challenge).items()
                if "challenge" not in k
            },
            authorize_params(client_id, verifier[:43], code_challenge_method="plain"),
        ):
            resp = await browser.get("/oauth/authorize", params=params)
            assert resp.status_code == 303
            query = parse_qs(urlsplit(resp.headers["location"]).query)
            assert query["error"] == ["invalid_request"] and query["state"] == [params["state"]]
            assert "code" not in query
        wrong_resource = authorize_params(client_id, challenge, resource="https://evil.example/mcp")
        resp = await browser.get("/oauth/authorize", params=wrong_resource)
        assert parse_qs(urlsplit(resp.headers["location"]).query)["error"] == ["invalid_target"]


async def test_denying_consent_redirects_access_denied(auth: AuthClient) -> None:
    user = await auth.create_user()
    client_id = await register(auth)
    _, challenge = pkce()
    async with browser_of(auth, user) as browser:
        params = authorize_params(client_id, challenge)
        form = {**params, "csrf_token": browser.cookies[CSRF_COOKIE], "decision": "deny"}
        resp = await browser.post("/oauth/authorize", data=form)
        assert resp.status_code == 303
        assert parse_qs(urlsplit(resp.headers["location"]).query)["error"] == ["access_denied"]
        no_csrf = await browser.post("/oauth/authorize", data={**params, "decision": "approve"})
        assert no_csrf.status_code == 403 and no_csrf.json()["error"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri", "redirect_uris"),
        ({"redirect_uris": ["https://a.example/cb#x"]}, "invalid_redirect_uri", "redirect_uris"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri", "redirect_uris"),
        ({"redirect_uris": []}, "invalid_redirect_uri", "redirect_uris"),
        ({"client_name": "x"}, "invalid_redirect_uri", "redirect_uris"),
        (
            {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"},
            "invalid_client_metadata",
            "token_endpoint_auth_method",
        ),
        (
            {"redirect_uris": [REDIRECT], "grant_types": ["client_credentials"]},
            "invalid_client_metadata",
            "grant_types.0",
        ),
    ],
)
async def test_bad_registrations_are_400_with_fields(
    auth: AuthClient, body: dict[str, Any], error: str, field: str
) -> None:
    resp = await auth.http.post("/oauth/register", json=body)
    assert resp.status_code == 400
    assert resp.json()["error"] == error and field in resp.json()["details"]["fields"]


async def test_bad_token_requests_are_4xx_never_500(auth: AuthClient) -> None:
    client_id = await register(auth)
    cases = [
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "x", "code_verifier": "y"}, 401, None),
        ({"grant_type": "authorization_code", "client_id": "sbc_nope"}, 401, "invalid_client"),
        ({"grant_type": "authorization_code", "client_id": client_id}, 400, "invalid_request"),
        (
            {
                "grant_type": "authorization_code",
                "client_id": client_id,
                "code": "sbo_" + "a" * 43,
                "code_verifier": "v" * 43,
            },
            400,
            "invalid_grant",
        ),
        ({"grant_type": "refresh_token", "client_id": client_id}, 400, "invalid_request"),
        (
            {"grant_type": "refresh_token", "client_id": client_id, "refresh_token": "sbr_x"},
            400,
            "invalid_grant",
        ),
        ({"grant_type": "refresh_token", "client_id": "\x00"}, 400, "invalid_request"),
    ]
    for form, status, error in cases:
        resp = await auth.http.post("/oauth/token", data=form)
        assert resp.status_code == status, (form, resp.text)
        assert resp.json()["error"] == (error or "invalid_client")
    resp = await auth.http.post("/oauth/token", content=b"{", headers=_json())
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    resp = await auth.http.post("/oauth/revoke", data={"token": "x"})
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    unknown = await auth.http.post("/oauth/revoke", data={"token": "a.b.c", "client_id": client_id})
    assert unknown.status_code == 200
    resp = await auth.http.get("/oauth/authorize", params={"client_id": unique("nope")})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "VALIDATION_ERROR"
    assert "client_id" in resp.json()["error"]["details"]["fields"]


def _json() -> dict[str, str]:
    """A JSON content type."""
    return {"Content-Type": "application/json"}


async def test_the_resource_is_the_gateways_mcp_url_exactly_never_a_path_under_it(
    auth: AuthClient,
) -> None:
    user = await auth.create_user()
    client_id = await register(auth)
    verifier, challenge = pkce()
    async with browser_of(auth, user) as browser:
        for resource in (
            "http://localhost:8080/mcp/team-a",
            "http://localhost:8080/mcp/../api",
            "http://localhost:8080/mcpx",
            "http://localhost:8080/mcp#x",
        ):
            params = authorize_params(client_id, challenge, resource=resource)
            resp = await browser.get("/oauth/authorize", params=params)
            query = parse_qs(urlsplit(resp.headers["location"]).query)
            assert query["error"] == ["invalid_target"], resource
        # the canonical form of the same URL is the same resource
        params = authorize_params(client_id, challenge, resource="HTTP://LOCALHOST:8080/mcp/")
        code = (await approve(browser, params))["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": client_id,
        "code_verifier": verifier,
        "resource": "http://localhost:8080/mcp/team-a",
    }
    resp = await auth.http.post("/oauth/token", data=form)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_target"


async def sign(pg_url: str, claims: dict[str, Any]) -> str:
    """A JWT with these claims, signed with auth's real active key."""
    keystore = KeyStore(TEST_ENV["AUTH_KEY_ENCRYPTION_SECRET"], 900)
    conn = await asyncpg.connect(pg_url)
    try:
        return await keystore.sign(conn, claims)
    finally:
        await conn.close()


async def test_a_token_is_accepted_only_from_the_issuer_its_audience_trusts_exactly(
    auth: AuthClient, mcp: httpx.AsyncClient, probe: httpx.AsyncClient, pg_url: str
) -> None:
    _, tokens = await fresh_grant(auth)
    real = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert real["iss"] == "http://localhost:8080" and real["aud"] == "http://localhost:8080/mcp"
    bearer = {"Authorization": f"Bearer {await sign(pg_url, real)}"}
    assert (await mcp.get(WHOAMI, headers=bearer)).status_code == 200
    for resource_server, claims in (
        (mcp, {**real, "iss": "switchboard-auth"}),  # the API's issuer, for the /mcp audience
        (mcp, {**real, "iss": "https://evil.example"}),
        (mcp, {**real, "aud": "http://localhost:8080/mcp/team-a"}),  # a path under it
        (mcp, {**real, "aud": "http://localhost:8080/mcpx"}),
        (probe, {**real, "aud": "switchboard"}),  # the API's audience from the OAuth issuer
    ):
        bearer = {"Authorization": f"Bearer {await sign(pg_url, claims)}"}
        resp = await resource_server.get(WHOAMI, headers=bearer)
        assert resp.status_code == 401, claims
        assert resp.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_registration_can_be_turned_off(fresh_db: str, nats_url: str, namespace: str) -> None:
    async with auth_service(
        fresh_db, nats_url, f"{namespace}r0", AUTH_OAUTH_REGISTRATION="off"
    ) as a:
        meta = (await a.http.get("/.well-known/oauth-authorization-server")).json()
        assert "registration_endpoint" not in meta
        body = {"client_name": "x", "redirect_uris": [REDIRECT]}
        resp = await a.http.post("/oauth/register", json=body)
        assert resp.status_code == 403 and resp.json()["error"] == "access_denied"


async def test_registration_can_require_a_platform_admins_token(
    fresh_db: str, nats_url: str, namespace: str
) -> None:
    async with auth_service(
        fresh_db, nats_url, f"{namespace}r1", AUTH_OAUTH_REGISTRATION="admin"
    ) as a:
        body = {"client_name": "x", "redirect_uris": [REDIRECT]}
        anonymous = await a.http.post("/oauth/register", json=body)
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_token"
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        user = await a.create_user()
        member = await a.http.post("/oauth/register", json=body, headers=a.bearer(user.token))
        assert member.status_code == 403 and member.json()["error"] == "insufficient_scope"
        forged = await a.http.post("/oauth/register", json=body, headers=a.bearer("sba_forged"))
        assert forged.status_code == 401
        admin = await a.http.post(
            "/oauth/register", json=body, headers=a.bearer(await a.admin_token())
        )
        assert admin.status_code == 201 and admin.json()["client_id"].startswith("sbc_")


async def test_open_registration_is_rate_limited_per_source(
    fresh_db: str, nats_url: str, namespace: str
) -> None:
    async with auth_service(
        fresh_db, nats_url, f"{namespace}r2", AUTH_OAUTH_REGISTRATIONS_PER_HOUR=2
    ) as a:
        body = {"client_name": "x", "redirect_uris": [REDIRECT]}
        source = {"X-Real-IP": "198.51.100.40"}
        for _ in range(2):
            assert (
                await a.http.post("/oauth/register", json=body, headers=source)
            ).status_code == 201
        third = await a.http.post("/oauth/register", json=body, headers=source)
        assert third.status_code == 429 and third.json()["error"] == "rate_limited"
        assert 1 <= int(third.headers["retry-after"]) <= 3600
        other = {"X-Real-IP": "198.51.100.41"}
        assert (await a.http.post("/oauth/register", json=body, headers=other)).status_code == 201
