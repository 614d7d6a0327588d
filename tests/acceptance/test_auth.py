"""Auth through nginx on the booted platform: the REST flows, and forged tokens refused cleanly."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time

import httpx

from tests.acceptance.platform_boot import Platform
from tests.acceptance.rest import Admin, bearer, error_code, expect, unique
from tests.acceptance.wire import message
from tests.e2e.gateway_support import list_tools, modern, modern_headers, tool_names

# one route behind a credential on each service, and /mcp
SERVICE_ROUTES = {
    "auth": "/api/v1/auth/me",
    "registry": "/api/v1/servers",
    "sandbox": "/api/v1/sandbox/status",
    "audit": "/api/v1/audit/calls",
}


async def refused_soon(api: httpx.AsyncClient, headers: dict[str, str], what: str) -> None:
    """Poll GET /api/v1/auth/me with `headers` until it is 401 (5 s at most)."""
    try:
        async with asyncio.timeout(5):
            while (await api.get("/api/v1/auth/me", headers=headers)).status_code != 401:
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"auth: {what} still accepted 5 s later") from None


async def test_auth_signs_in_manages_users_orgs_teams_grants_keys_tokens_and_sessions(
    api: httpx.AsyncClient, admin: Admin, weather: str
) -> None:
    me = expect(await api.get("/api/v1/auth/me", headers=admin.headers), 200, "auth: me")
    assert me["user"]["platform_role"] == "platform_admin", "auth: me shows the platform admin"

    name, password = unique("alice"), f"Pw-{secrets.token_hex(8)}!"
    body = {"username": name, "password": password, "platform_role": "user"}
    resp = await api.post("/api/v1/users", json=body, headers=admin.headers)
    alice = expect(resp, 201, "auth: create a user")
    users = expect(
        await api.get("/api/v1/users", params={"q": name}, headers=admin.headers),
        200,
        "auth: list users",
    )
    assert name in [u["username"] for u in users["items"]], "auth: list users shows the new user"

    slug = unique("org")
    resp = await api.post("/api/v1/orgs", json={"slug": slug, "name": slug}, headers=admin.headers)
    expect(resp, 201, "auth: create an org")
    resp = await api.post(
        f"/api/v1/orgs/{slug}/members",
        json={"user": alice["id"], "role": "member"},
        headers=admin.headers,
    )
    assert resp.status_code in (200, 201), f"auth: add an org member: {resp.text[:600]}"
    team = unique("team")
    resp = await api.post("/api/v1/teams", json={"name": team, "org": slug}, headers=admin.headers)
    expect(resp, 201, "auth: create a team")
    resp = await api.post(
        f"/api/v1/teams/{team}/members",
        json={"user": alice["id"], "role": "member"},
        headers=admin.headers,
    )
    assert resp.status_code in (200, 201), f"auth: add a team member: {resp.text[:600]}"
    # `weather` is the platform's (registered without an org): lent to the org, then granted
    resp = await api.post(
        f"/api/v1/servers/{weather}/shares", json={"org": slug}, headers=admin.headers
    )
    expect(resp, 201, "registry: share a platform server with an org")
    grant = {"server": weather, "permissions": ["read", "execute"]}
    resp = await api.post(f"/api/v1/teams/{team}/grants", json=grant, headers=admin.headers)
    expect(resp, 201, "auth: grant a team a server")
    grants = expect(
        await api.get(f"/api/v1/teams/{team}/grants", headers=admin.headers),
        200,
        "auth: list a team's grants",
    )
    assert [g["server"] for g in grants["items"]] == [weather], "auth: the team's grants"

    signed_in = expect(
        await api.post("/api/v1/auth/login", json={"username": name, "password": password}),
        200,
        "auth: a new user signs in",
    )
    alice_jwt = signed_in["access_token"]
    mine = expect(await api.get("/api/v1/auth/me", headers=bearer(alice_jwt)), 200, "auth: me")
    assert mine["user"]["username"] == name, "auth: me names the user"
    assert weather in [g["server"] for g in mine["principal"]["grants"]], (
        "auth: a team member holds the team's grant"
    )

    resp = await api.post(
        "/api/v1/keys", json={"name": "laptop", "teams": [team]}, headers=bearer(alice_jwt)
    )
    key = expect(resp, 201, "auth: create an API key")["key"]
    # the share reaches the gateways as an event (the registry's outbox, then a refetch): it
    # shows within moments, not necessarily by the next request
    deadline = time.monotonic() + 5
    while True:
        listed = await list_tools(api, "", key)
        tools = tool_names(listed)
        if tools or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    assert tools and all(t.startswith(f"{weather}__") for t in tools), (
        f"auth: a team grant gives exactly its server's tools on /mcp (got {tools}, "
        f"answer {listed.status_code})"
    )
    keys = expect(await api.get("/api/v1/keys", headers=bearer(alice_jwt)), 200, "auth: keys")
    key_id = next(k["id"] for k in keys["items"] if key.startswith(k["prefix"]))
    expect(await api.get("/api/v1/auth/me", headers={"X-API-Key": key}), 200, "auth: an API key")
    resp = await api.delete(f"/api/v1/keys/{key_id}", headers=bearer(alice_jwt))
    expect(resp, 204, "auth: revoke an API key")
    await refused_soon(api, {"X-API-Key": key}, "a revoked API key")

    scopes = [f"read:org:{slug}"]
    resp = await api.post(
        f"/api/v1/orgs/{slug}/tokens", json={"name": "ci", "scopes": scopes}, headers=admin.headers
    )
    token = expect(resp, 201, "auth: create a service token")["token"]
    expect(
        await api.get("/api/v1/servers", headers=bearer(token)),
        200,
        "auth: a service token reads the registry",
    )
    tokens = expect(
        await api.get(f"/api/v1/orgs/{slug}/tokens", headers=admin.headers),
        200,
        "auth: list service tokens",
    )
    token_id = next(t["id"] for t in tokens["items"] if token.startswith(t["prefix"]))
    resp = await api.delete(f"/api/v1/orgs/{slug}/tokens/{token_id}", headers=admin.headers)
    expect(resp, 204, "auth: revoke a service token")
    await refused_soon(api, bearer(token), "a revoked service token")

    spent = signed_in["refresh_token"]
    rotated = expect(
        await api.post("/api/v1/auth/refresh", json={"refresh_token": spent}),
        200,
        "auth: refresh",
    )
    replayed = await api.post("/api/v1/auth/refresh", json={"refresh_token": spent})
    assert (replayed.status_code, error_code(replayed)) == (401, "UNAUTHENTICATED"), (
        f"auth: a spent refresh token is refused: {replayed.status_code} {replayed.text[:300]}"
    )
    await refused_soon(api, bearer(rotated["access_token"]), "the session of a replayed token")

    again = expect(
        await api.post("/api/v1/auth/login", json={"username": name, "password": password}),
        200,
        "auth: sign in again",
    )
    resp = await api.post(
        "/api/v1/auth/logout",
        json={"refresh_token": again["refresh_token"]},
        headers=bearer(again["access_token"]),
    )
    assert expect(resp, 200, "auth: logout")["session_ended"], "auth: logout ends the session"
    await refused_soon(api, bearer(again["access_token"]), "a logged-out session's token")
    resp = await api.post("/api/v1/auth/refresh", json={"refresh_token": again["refresh_token"]})
    assert resp.status_code == 401, "auth: a logged-out session's refresh token is refused"


def forged_rs256(kid: str) -> str:
    """A JWT with the platform's real key id and right-looking claims, but a random signature.

    Its header names `alg: RS256` with that key id; its signature is 256 random bytes (nobody
    holds an RSA key for that kid)."""

    def part(doc: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"sub": "forged", "aud": "switchboard", "typ": "access", "iat": now, "exp": now + 600}
    signature = base64.urlsafe_b64encode(secrets.token_bytes(256)).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256', 'kid': kid, 'typ': 'JWT'})}.{part(claims)}.{signature}"


async def test_a_jwt_naming_rs256_with_the_real_kid_is_a_clean_401_on_every_service_and_mcp(
    platform: Platform, api: httpx.AsyncClient
) -> None:
    jwks = expect(await api.get("/.well-known/jwks.json"), 200, "auth: the JWKS is served")
    kids = [k["kid"] for k in jwks["keys"] if k.get("crv") == "Ed25519"]
    assert kids, f"auth: the JWKS holds the platform's Ed25519 key: {jwks}"
    forged = bearer(forged_rs256(kids[0]))
    wrong = {}
    for service, path in SERVICE_ROUTES.items():
        resp = await api.get(path, headers=forged)
        if (resp.status_code, error_code(resp)) != (401, "UNAUTHENTICATED"):
            wrong[f"{service} {path}"] = f"{resp.status_code} {resp.text[:200]}"
    resp = await api.post(
        "/mcp",
        json=modern("tools/list", {}),
        headers={**modern_headers("tools/list", "x"), **forged},
    )
    doc = message(resp)
    if resp.status_code != 401 or not doc or (doc.get("error") or {}).get("code") != -32001:
        wrong["gateway /mcp"] = f"{resp.status_code} {resp.text[:200]}"
    assert not wrong, (
        "auth: a bearer JWT with alg RS256 and the real Ed25519 kid must be a 401 with the "
        f"error envelope (JSON-RPC -32001 on /mcp), never a 500: {wrong}; {platform.logs()}"
    )
