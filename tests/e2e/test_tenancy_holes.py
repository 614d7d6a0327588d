"""Each tenancy hole of issue 13, reproduced through nginx with the REST and MCP APIs only.

So the same test runs against any version: every one fails on a platform that has the hole."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import websockets

from libs.devstack.stack import Stack
from tests.e2e.gateway_support import admin_token, bearer, modern, modern_headers
from tests.support.upstreams import make_upstream, run_upstream


@dataclass
class Org:
    """An org with an admin, a member, a team holding the member, and their fresh JWTs."""

    id: str
    slug: str
    team: str
    admin: str  # JWT
    member: str  # JWT
    member_id: str


class Api:
    """The REST API through nginx as the platform admin (or as a given JWT)."""

    def __init__(self, http: httpx.AsyncClient, admin: str) -> None:
        self.http = http
        self.admin = admin

    async def call(
        self, method: str, path: str, token: str | None = None, expect: int | None = None, **kw
    ) -> httpx.Response:
        resp = await self.http.request(method, path, headers=bearer(token or self.admin), **kw)
        if expect is not None:
            assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp

    async def user(self) -> tuple[str, str]:
        """A new user: (id, JWT)."""
        name, password = f"u-{secrets.token_hex(4)}", f"Pw-{secrets.token_hex(8)}!"
        body = {"username": name, "password": password}
        user = (await self.call("POST", "/api/v1/users", json=body, expect=201)).json()
        return user["id"], password

    async def login(self, user_id: str, password: str) -> str:
        """A fresh JWT of the user (carrying its current roles and grants)."""
        me = (await self.call("GET", f"/api/v1/users/{user_id}", expect=200)).json()
        body = {"username": me["username"], "password": password}
        resp = await self.http.post("/api/v1/auth/login", json=body)
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    async def org(self) -> Org:
        """A new org with an admin and a member in a team."""
        slug = f"o-{secrets.token_hex(4)}"
        org = (await self.call("POST", "/api/v1/orgs", json={"slug": slug}, expect=201)).json()
        team = f"t-{secrets.token_hex(4)}"
        await self.call("POST", "/api/v1/teams", json={"name": team, "org": slug}, expect=201)
        (admin_id, admin_pw), (member_id, member_pw) = await self.user(), await self.user()
        for user, role in ((admin_id, "admin"), (member_id, "member")):
            body = {"user": user, "role": role}
            await self.call("POST", f"/api/v1/orgs/{slug}/members", json=body, expect=201)
        body = {"user": member_id, "role": "member"}
        await self.call("POST", f"/api/v1/teams/{team}/members", json=body, expect=201)
        return Org(
            org["id"],
            slug,
            team,
            await self.login(admin_id, admin_pw),
            await self.login(member_id, member_pw),
            member_id,
        )


@pytest.fixture
async def api(e2e_stack: Stack) -> AsyncIterator[Api]:
    """The REST API through nginx as the platform admin."""
    async with httpx.AsyncClient(base_url=e2e_stack.url, timeout=30) as http:
        yield Api(http, await admin_token(http))


async def mcp(
    api: Api, token: str, method: str, params: dict[str, Any], path: str = "/mcp"
) -> dict[str, Any]:
    """One stateless (2026-07-28) MCP request through nginx; its JSON-RPC answer."""
    name = params.get("name") or params.get("uri")  # the Mcp-Name routing header
    resp = await api.http.post(
        path, json=modern(method, params), headers=modern_headers(method, token, name)
    )
    return resp.json()


async def server_in(api: Api, org: Org | None, url: str, **fields: Any) -> str:
    """Register a remote server (in `org`, as the platform admin); its name."""
    name = f"s-{secrets.token_hex(4)}"
    body = {"name": name, "transport": "streamable-http", "url": url, **fields}
    if org is not None:
        body["org"] = org.id
    await api.call("POST", "/api/v1/servers", json=body, expect=201)
    return name


async def routed(api: Api, tool: str) -> None:
    """Wait until the gateway routes `tool` (as the platform admin sees it)."""
    async with asyncio.timeout(10):
        while True:
            listed = await mcp(api, api.admin, "tools/list", {})
            if tool in [t["name"] for t in listed.get("result", {}).get("tools", [])]:
                return
            await asyncio.sleep(0.1)


async def test_hole_1_a_team_cannot_be_granted_another_orgs_server_nor_reach_it(api: Api) -> None:
    a, b = await api.org(), await api.org()
    async with run_upstream(make_upstream()) as url:
        theirs = await server_in(api, b, url, headers={"Authorization": "Bearer org-b-secret"})
        await routed(api, f"{theirs}__temperature")
        body = {"server": theirs, "permissions": ["read", "execute", "write"]}
        grant = await api.call("POST", f"/api/v1/teams/{a.team}/grants", a.admin, json=body)
        assert grant.status_code == 404, grant.text  # as if it did not exist
        member = a.member
        details = await api.call("GET", f"/api/v1/servers/{theirs}/details", a.admin)
        assert details.status_code == 404
        moved = await api.call(
            "PATCH", f"/api/v1/servers/{theirs}", a.admin, json={"url": "http://127.0.0.1:9/x"}
        )
        assert moved.status_code == 404
        listed = await mcp(api, member, "tools/list", {})
        assert not [t for t in listed["result"]["tools"] if t["name"].startswith(theirs)]
        called = await mcp(
            api,
            member,
            "tools/call",
            {"name": f"{theirs}__temperature", "arguments": {"city": "x"}},
        )
        assert called["error"]["code"] == -32602  # an unknown tool


async def test_hole_1_unauthenticated_health_shows_no_server_names(
    api: Api, e2e_stack: Stack
) -> None:
    async with run_upstream(make_upstream()) as url:
        name = await server_in(api, None, url)
        await routed(api, f"{name}__temperature")
        health = await api.http.get("/api/v1/health")
        assert name not in health.text
        ws_url = e2e_stack.url.replace("http://", "ws://") + "/ws/health_status"
        async with websockets.connect(ws_url) as ws, asyncio.timeout(10):
            first = orjson.loads(await ws.recv())
    assert first["type"] == "health"
    assert first["data"].get("servers") in ({}, None), first["data"]


async def test_hole_2_an_orgs_admin_registers_a_server_naming_the_org_by_its_slug(
    api: Api,
) -> None:
    a = await api.org()
    body = {"name": f"s-{secrets.token_hex(4)}", "transport": "stdio", "command": "x",
            "enabled": False, "org": a.slug}  # fmt: skip
    created = await api.call("POST", "/api/v1/servers", a.admin, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["org"] == a.id


async def test_hole_3_a_write_grant_cannot_carry_stored_secrets_to_a_new_url(api: Api) -> None:
    a = await api.org()
    async with run_upstream(make_upstream()) as url:
        name = await server_in(api, a, url, headers={"Authorization": "Bearer keep-me-home"})
        body = {"server": name, "permissions": ["read", "write"]}
        await api.call("POST", f"/api/v1/teams/{a.team}/grants", json=body, expect=201)
    member = a.member
    fresh = await api.call(
        "PATCH", f"/api/v1/servers/{name}", member, json={"url": "http://127.0.0.1:9/mcp"}
    )
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["headers"] == {}  # the stored credential did not follow


async def test_hole_3_a_grant_narrowed_to_tools_gives_no_resources_or_prompts(api: Api) -> None:
    a = await api.org()
    async with run_upstream(make_upstream()) as url:
        name = await server_in(api, a, url)
        await routed(api, f"{name}__temperature")
        body = {"server": name, "permissions": ["read", "execute"], "tools": ["temperature"]}
        await api.call("POST", f"/api/v1/teams/{a.team}/grants", json=body, expect=201)
        member = a.member
        await listed_for(api, member, f"{name}__temperature")
        tools = await mcp(api, member, "tools/list", {})
        resources = await mcp(api, member, "resources/list", {})
        prompts = await mcp(api, member, "prompts/list", {})
        read = await mcp(
            api, member, "resources/read", {"uri": f"switchboard://{name}/weather://stations"}
        )
        passthrough = await mcp(api, member, "resources/list", {}, f"/mcp/servers/{name}")
    assert [t["name"] for t in tools["result"]["tools"]] == [f"{name}__temperature"]
    assert resources["result"]["resources"] == []
    assert prompts["result"]["prompts"] == []
    assert read["error"]["code"] == -32602  # an unknown resource, as if it did not exist
    assert passthrough["error"]["code"] == -32003


async def listed_for(api: Api, token: str, tool: str) -> None:
    """Wait until `tool` is listed to `token` (its grant's event reached the gateway)."""
    async with asyncio.timeout(10):
        while True:
            listed = await mcp(api, token, "tools/list", {})
            if tool in [t["name"] for t in listed.get("result", {}).get("tools", [])]:
                return
            await asyncio.sleep(0.05)


async def test_hole_4_a_call_is_filed_under_the_servers_org_not_the_callers(api: Api) -> None:
    a, b = await api.org(), await api.org()
    async with run_upstream(make_upstream()) as url:
        name = await server_in(api, b, url)
        await routed(api, f"{name}__temperature")
        # a's member also belongs to b (a second org), in a team of b granted the server
        body = {"user": a.member_id, "role": "member"}
        await api.call("POST", f"/api/v1/orgs/{b.slug}/members", json=body, expect=201)
        await api.call("POST", f"/api/v1/teams/{b.team}/members", json=body, expect=201)
        grant = {"server": name, "permissions": ["read", "execute"]}
        await api.call("POST", f"/api/v1/teams/{b.team}/grants", json=grant, expect=201)
        await listed_for(api, a.member, f"{name}__temperature")
        called = await mcp(
            api,
            a.member,
            "tools/call",
            {"name": f"{name}__temperature", "arguments": {"city": "x"}},
        )
        assert "result" in called, called
    async with asyncio.timeout(10):
        while True:
            mine = await api.call("GET", "/api/v1/audit/calls", b.admin, params={"server": name})
            if mine.json()["total"] == 1:
                break
            await asyncio.sleep(0.1)
    assert mine.json()["items"][0]["org"] == b.id
    theirs = await api.call("GET", "/api/v1/audit/calls", a.admin, params={"server": name})
    assert theirs.json()["total"] == 0


async def test_hole_5_a_platform_admins_server_without_an_org_is_the_platforms(api: Api) -> None:
    a = await api.org()  # the platform admin owns it, having created it
    body = {"name": f"s-{secrets.token_hex(4)}", "transport": "stdio", "command": "x",
            "enabled": False}  # fmt: skip
    created = (await api.call("POST", "/api/v1/servers", json=body, expect=201)).json()
    assert created["org"] is None
    assert (await api.call("GET", f"/api/v1/servers/{created['name']}", a.admin)).status_code == 404
