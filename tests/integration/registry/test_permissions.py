"""Who may read and write servers: grants, org roles, platform admins; no credential is 401."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.auth import unique


async def test_reads_and_writes_follow_grants_and_org_roles(
    api: Any, auth: Any, registry_url: str
) -> None:
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    reader, writer, stranger, org_admin = [await auth.create_user() for _ in range(4)]
    await auth.add_member(team["name"], reader)
    await auth.add_member(team["name"], writer)
    await auth.add_org_member(org["id"], org_admin, "admin")
    writers = await auth.create_team(org["slug"], name=unique("writers"))
    await auth.add_member(writers["name"], writer)
    # the users' tokens predate their roles and grants: sign in again for fresh principals
    tokens = {
        u: (await auth.login(u.username, u.password))["access_token"]
        for u in (reader, writer, stranger, org_admin)
    }

    def as_(user: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=registry_url, timeout=20, headers={"Authorization": f"Bearer {tokens[user]}"}
        )

    body = {"name": "files", "transport": "stdio", "command": "npx", "org": org["id"]}
    async with as_(org_admin) as c:
        resp = await c.post("/api/v1/servers", json=body)
        assert resp.status_code == 201, resp.text
        other = await c.post("/api/v1/servers", json={**body, "name": "x", "org": "elsewhere"})
        assert other.status_code == 404 and other.json()["error"]["code"] == "NOT_FOUND"
    await auth.grant(team["name"], "files", ["read"])
    await auth.grant(writers["name"], "files", ["write"])
    tokens = {u: (await auth.login(u.username, u.password))["access_token"] for u in tokens}
    await api.post(
        "/api/v1/servers", json={"name": "hidden", "transport": "stdio", "command": "npx"}
    )
    async with as_(reader) as c:
        listed = (await c.get("/api/v1/servers")).json()
        assert [s["name"] for s in listed["items"]] == ["files"]
        assert (await c.get("/api/v1/servers/files")).status_code == 200
        assert (await c.get("/api/v1/servers/hidden")).status_code == 404
        denied = await c.patch("/api/v1/servers/files", json={"description": "mine"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
        assert (await c.post("/api/v1/servers", json={**body, "name": "new"})).status_code == 403
        assert (await c.get("/api/v1/settings")).status_code == 403
    async with as_(writer) as c:
        resp = await c.patch("/api/v1/servers/files", json={"description": "ours"})
        assert resp.status_code == 200 and resp.json()["description"] == "ours"
        assert (await c.post("/api/v1/servers/files/toggle")).status_code == 200
        assert (await c.delete("/api/v1/servers/hidden")).status_code == 404
    async with as_(stranger) as c:
        assert (await c.get("/api/v1/servers")).json()["total"] == 0
        assert (await c.delete("/api/v1/servers/files")).status_code == 404
    async with httpx.AsyncClient(base_url=registry_url) as anon:
        resp = await anon.get("/api/v1/servers")
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_an_api_key_carries_its_users_grants(api: Any, auth: Any, registry_url: str) -> None:
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    user = await auth.create_user()
    await auth.add_member(team["name"], user)
    files = {"name": "files", "transport": "stdio", "command": "npx", "org": org["id"]}
    assert (await api.post("/api/v1/servers", json=files)).status_code == 201
    await auth.grant(team["name"], "files", ["read"])
    token = (await auth.login(user.username, user.password))["access_token"]
    key = await auth.api_key(token, teams=[team["name"]])
    async with httpx.AsyncClient(base_url=registry_url, headers={"X-API-Key": key}) as c:
        assert (await c.get("/api/v1/servers/files")).status_code == 200
        assert (await c.delete("/api/v1/servers/files")).status_code == 403


async def test_tool_listings_follow_grants_narrowed_to_tools(
    api: Any, auth: Any, registry_url: str
) -> None:
    from tests.support.upstreams import make_upstream, run_upstream

    org = await auth.create_org()
    narrow = await auth.create_team(org["slug"])
    owners = await auth.create_team(org["slug"], name=unique("owners"))
    user, owner = await auth.create_user(), await auth.create_user()
    await auth.add_member(narrow["name"], user)
    await auth.add_member(owners["name"], owner)
    async with run_upstream(make_upstream()) as url:
        body = {
            "name": "weather",
            "transport": "streamable-http",
            "url": url,
            "owner_team": owners["name"],
            "org": org["id"],
        }
        assert (await api.post("/api/v1/servers", json=body)).status_code == 201
    await auth.grant(narrow["name"], "weather", ["read", "execute"], tools=["temperature"])
    await api.post("/api/v1/servers", json={"name": "other", "transport": "stdio", "command": "x"})
    tokens = {u: (await auth.login(u.username, u.password))["access_token"] for u in (user, owner)}

    def as_(who: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {tokens[who]}"}
        return httpx.AsyncClient(base_url=registry_url, timeout=20, headers=headers)

    async with as_(user) as c:
        listed = (await c.get("/api/v1/tools")).json()
        assert [t["name"] for t in listed["items"]] == ["temperature"] and listed["total"] == 1
        own = (await c.get("/api/v1/servers/weather/tools")).json()
        assert [t["name"] for t in own["items"]] == ["temperature"]
        hidden = await c.get("/api/v1/servers/weather/tools/forecast")
        assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "NOT_FOUND"
        assert (await c.get("/api/v1/servers/weather/tools/temperature")).status_code == 200
    # the owner team's members read the server and all its tools without a grant, but a plain
    # member (team role member) may not write it
    async with as_(owner) as c:
        servers = (await c.get("/api/v1/servers")).json()
        assert [s["name"] for s in servers["items"]] == ["weather"]
        tools = (await c.get("/api/v1/tools")).json()
        assert sorted(t["name"] for t in tools["items"]) == ["forecast", "temperature"]
        denied = await c.patch("/api/v1/servers/weather", json={"description": "x"})
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
