"""The registry's side of tenancy (docs/TENANCY.md).

Orgs by id or slug, platform servers and shares, secrets that do not follow a new destination,
and the grant resolution auth asks for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from libs.common import rpc
from services.registry import orgs
from services.registry.context import Registry
from tests.support.auth import unique
from tests.support.events import Events
from tests.support.upstreams import make_upstream, run_upstream

DISABLED = {"transport": "streamable-http", "url": "http://127.0.0.1:9/mcp", "enabled": False}


@asynccontextmanager
async def as_user(registry_url: str, auth: Any, user: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A registry client signed in as `user` afresh (its token then carries its roles)."""
    token = (await auth.login(user.username, user.password))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=registry_url, headers=headers, timeout=20) as client:
        yield client


async def org_admin(auth: Any) -> tuple[dict, Any]:
    """A new org and an admin of it (no platform role)."""
    org = await auth.create_org()
    admin = await auth.create_user()
    await auth.add_org_member(org["id"], admin, "admin")
    return org, admin


async def test_an_orgs_admin_registers_a_server_naming_the_org_by_its_slug(
    auth: Any, registry_url: str
) -> None:
    org, admin = await org_admin(auth)
    async with as_user(registry_url, auth, admin) as c:
        resp = await c.post(
            "/api/v1/servers", json={"name": "by-slug", "org": org["slug"], **DISABLED}
        )
        assert resp.status_code == 201, resp.text
        assert resp.json()["org"] == org["id"]
        listed = (await c.get("/api/v1/servers", params={"org": org["slug"]})).json()
        assert [s["name"] for s in listed["items"]] == ["by-slug"]
        assert (
            await c.patch("/api/v1/servers/by-slug", json={"description": "x"})
        ).status_code == 200


async def test_an_org_admin_cannot_register_in_or_reach_another_orgs_servers(
    api: Any, auth: Any, registry_url: str
) -> None:
    org_a, admin_a = await org_admin(auth)
    org_b = await auth.create_org()
    body = {"name": "theirs", "org": org_b["id"], **DISABLED}
    assert (await api.post("/api/v1/servers", json=body)).status_code == 201
    async with as_user(registry_url, auth, admin_a) as c:
        resp = await c.post("/api/v1/servers", json={**body, "name": "mine", "org": org_b["slug"]})
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_FOUND"
        assert (await c.get("/api/v1/servers")).json()["total"] == 0
        for method, path in (
            ("GET", "/api/v1/servers/theirs"),
            ("PATCH", "/api/v1/servers/theirs"),
            ("GET", "/api/v1/servers/theirs/secrets"),
            ("POST", "/api/v1/servers/theirs/shares"),
        ):
            resp = await c.request(method, path, json={} if method != "GET" else None)
            assert resp.status_code == 404, (method, path, resp.text)


async def test_a_server_without_an_org_is_the_platforms_and_reaches_only_the_orgs_it_is_shared_with(
    api: Any, auth: Any, registry_url: str, events: Events
) -> None:
    org, admin = await org_admin(auth)
    body = {"name": "platform-tool", "headers": {"Authorization": "Bearer p"}, **DISABLED}
    created = await api.post("/api/v1/servers", json=body)
    assert created.status_code == 201 and created.json()["org"] is None
    async with as_user(registry_url, auth, admin) as c:
        assert (await c.get("/api/v1/servers/platform-tool")).status_code == 404
        assert (
            await c.post("/api/v1/servers/platform-tool/shares", json={"org": org["id"]})
        ).status_code == 404
    shared = await api.post("/api/v1/servers/platform-tool/shares", json={"org": org["slug"]})
    assert shared.status_code == 201, shared.text
    assert [s["org"] for s in shared.json()["items"]] == [org["id"]]
    event = await events.wait_for(lambda e: e.type == "registry.server.shared")
    assert event.data["org"] == org["id"] and event.data["shared_with"] == [org["id"]]
    async with as_user(registry_url, auth, admin) as c:
        view = (await c.get("/api/v1/servers/platform-tool")).json()
        # lent, not given: no secrets' names, no other borrowers, no change
        assert view["headers"] == {} and view["shared_with"] is None
        assert (await c.get("/api/v1/servers/platform-tool/sources")).status_code == 403
        assert (
            await c.patch("/api/v1/servers/platform-tool", json={"description": "x"})
        ).status_code == 403
        resp = await c.post("/api/v1/servers/platform-tool/shares", json={"org": org["id"]})
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "FORBIDDEN"
    assert (await api.get("/api/v1/servers/platform-tool")).json()["shared_with"] == [org["id"]]
    resp = await api.delete(f"/api/v1/servers/platform-tool/shares/{org['slug']}")
    assert resp.status_code == 204
    await events.wait_for(lambda e: e.type == "registry.server.unshared")
    async with as_user(registry_url, auth, admin) as c:
        assert (await c.get("/api/v1/servers/platform-tool")).status_code == 404
    own = {"name": "own", "org": org["id"], **DISABLED}
    assert (await api.post("/api/v1/servers", json=own)).status_code == 201
    resp = await api.post("/api/v1/servers/own/shares", json={"org": org["id"]})
    assert resp.status_code == 422  # a server is not shared with its own org


async def test_a_write_grant_that_moves_a_server_drops_its_stored_secrets(
    api: Any, auth: Any, registry_url: str, reg: Registry
) -> None:
    org, admin = await org_admin(auth)
    team = await auth.create_team(org["slug"])
    writer = await auth.create_user()
    await auth.add_member(team["name"], writer)
    remote = {"name": "vault", "org": org["id"], "headers": {"Authorization": "Bearer s3"}}
    assert (await api.post("/api/v1/servers", json={**DISABLED, **remote})).status_code == 201
    stdio = {"name": "runner", "transport": "stdio", "command": "python", "enabled": False}
    body = {**stdio, "org": org["id"], "env": {"TOKEN": "s3"}}
    assert (await api.post("/api/v1/servers", json=body)).status_code == 201
    await auth.grant(team["name"], "vault", ["write"])
    await auth.grant(team["name"], "runner", ["write"])
    async with as_user(registry_url, auth, writer) as c:
        kept = await c.patch(
            "/api/v1/servers/vault",
            json={"url": "http://127.0.0.1:10/mcp", "headers": {"Authorization": "********"}},
        )
        assert kept.status_code == 422, kept.text
        assert "headers.Authorization" in kept.json()["error"]["details"]["fields"]
        moved = await c.patch("/api/v1/servers/vault", json={"url": "http://127.0.0.1:10/mcp"})
        assert moved.status_code == 200 and moved.json()["headers"] == {}
        ran = await c.patch("/api/v1/servers/runner", json={"args": ["-c", "print(1)"]})
        assert ran.status_code == 200 and ran.json()["env"] == {}
        # a change that does not move the server keeps them
        await c.post(
            "/api/v1/servers/vault/secrets", json={"key": "X-Key", "value": "v", "kind": "header"}
        )
        same = await c.patch("/api/v1/servers/vault", json={"url": "http://127.0.0.1:10/mcp"})
        assert same.json()["headers"] == {"X-Key": "********"}
    snap = await reg.bus.request(rpc.REGISTRY_SNAPSHOT, {"names": ["vault", "runner"]})
    by_name = {s["name"]: s for s in snap["servers"]}
    assert by_name["vault"]["headers"] == {"X-Key": "v"} and by_name["runner"]["env"] == {}
    async with as_user(registry_url, auth, admin) as c:  # the org's admin may move them
        resp = await c.patch("/api/v1/servers/vault", json={"url": "http://127.0.0.1:11/mcp"})
        assert resp.json()["headers"] == {"X-Key": "********"}


async def test_a_grant_narrowed_to_tools_shows_no_other_tools_resources_or_prompts(
    api: Any, auth: Any, registry_url: str
) -> None:
    org = await auth.create_org()
    team = await auth.create_team(org["slug"])
    user = await auth.create_user()
    await auth.add_member(team["name"], user)
    async with run_upstream(make_upstream()) as url:
        body = {"name": "weather", "transport": "streamable-http", "url": url, "org": org["id"]}
        assert (await api.post("/api/v1/servers", json=body)).status_code == 201
    await auth.grant(team["name"], "weather", ["read", "execute"], tools=["temperature"])
    async with as_user(registry_url, auth, user) as c:
        details = (await c.get("/api/v1/servers/weather/details")).json()
    assert [t["name"] for t in details["tools"]] == ["temperature"]
    assert details["resources"] == [] and details["prompts"] == []


async def test_org_slugs_stored_before_are_rewritten_to_org_ids(
    api: Any, auth: Any, reg: Registry, events: Events
) -> None:
    org = await auth.create_org()
    assert (
        await api.post("/api/v1/servers", json={"name": "legacy", **DISABLED})
    ).status_code == 201
    async with reg.pool.acquire() as conn:  # as stored before orgs were kept by id
        await conn.execute(
            "UPDATE registry.servers SET org = $1 WHERE name = 'legacy'", org["slug"]
        )
    assert await orgs.normalise_stored(reg) == 1
    assert (await api.get("/api/v1/servers/legacy")).json()["org"] == org["id"]
    event = await events.wait_for(
        lambda e: e.type == "registry.server.updated" and e.data["changed"] == ["org"]
    )
    assert event.org == org["id"]


async def test_resolve_answers_only_the_orgs_own_and_shared_servers(
    api: Any, auth: Any, reg: Registry
) -> None:
    mine, theirs, lent = await auth.create_org(), await auth.create_org(), unique("lent")
    for name, org in (("ours", mine["id"]), ("foreign", theirs["id"]), (lent, theirs["id"])):
        assert (
            await api.post("/api/v1/servers", json={"name": name, "org": org, **DISABLED})
        ).status_code == 201
    await api.post(f"/api/v1/servers/{lent}/shares", json={"org": mine["id"]})
    refs = ["ours", "foreign", lent, "missing"]
    reply = await reg.bus.request(rpc.REGISTRY_RESOLVE, {"org": mine["id"], "servers": refs})
    found = {s["ref"]: s["shared"] for s in reply["servers"]}
    assert found == {"ours": False, lent: True}


async def test_an_import_cannot_place_a_server_in_another_org(auth: Any, registry_url: str) -> None:
    org, admin = await org_admin(auth)
    other = await auth.create_org()
    config = {"servers": [{"name": "smuggled", "org": other["id"], **DISABLED}]}
    async with as_user(registry_url, auth, admin) as c:
        resp = await c.post("/api/v1/import", json={"config": config, "format": "generic"})
        assert resp.status_code == 201, resp.text
        # the document's org is not taken: the server is the importing admin's org's
        assert (await c.get("/api/v1/servers/smuggled")).json()["org"] == org["id"]
