"""Two orgs with one of every object, built through nginx for the tenancy matrix.

Each org has an owner, an admin, a member and a viewer; a team (the member and the viewer in it);
a remote server (an SDK upstream in this process, with a stored credential header and a secret),
its source, a stdio server hosted in the sandbox (its process started by a call); grants of the
team on both servers; an API key of the member; a service token with the org admin's scope and a
grant; an alert rule on the remote server; and a tool-call record. The platform owns the code
tool. `markers` are strings that name or hold the org's objects: another org must never see one.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.gateway_support import bearer, modern, modern_headers
from tests.support import tarballs

ECHO_SERVER = str(Path(__file__).resolve().parents[1] / "fixtures" / "sandbox" / "echo_server.py")
ROLES = ("owner", "admin", "member", "viewer")


@dataclass
class Person:
    """A user with a fresh JWT."""

    id: str
    username: str
    token: str


@dataclass
class Catalog:
    """The org's certification objects: a private MCP, its scanned version, a policy, a report."""

    mcp: dict[str, Any]
    version: dict[str, Any]
    snapshot_id: str
    policy: dict[str, Any]
    report: dict[str, Any]

    def markers(self) -> set[str]:
        """Strings that name these objects."""
        return {
            self.mcp["id"],
            self.mcp["name"],
            self.version["id"],
            self.version["visible_version"],
            self.snapshot_id,
            self.policy["id"],
            self.policy["name"],
            self.report["id"],
        }


@dataclass
class World:
    """One org and its objects (ids, names, credentials)."""

    id: str
    slug: str
    people: dict[str, Person]
    team: dict[str, Any]
    server: dict[str, Any]  # remote (Streamable HTTP)
    stdio: dict[str, Any]  # hosted in the sandbox
    source: dict[str, Any]
    grant: dict[str, Any]
    key: str  # the member's API key
    key_id: str
    token: str  # service token (admin:org:<slug>)
    token_id: str
    rule: dict[str, Any]
    call_id: str
    secret: str  # a stored secret's value
    catalog: Catalog | None = None
    markers: set[str] = field(default_factory=set)


class Builder:
    """Makes orgs and their objects through nginx as the platform admin."""

    def __init__(self, http: httpx.AsyncClient, admin: str, upstream_url: str) -> None:
        self.http = http
        self.admin = admin
        self.upstream_url = upstream_url

    async def call(
        self, method: str, path: str, token: str | None = None, expect: int = 200, **kw: Any
    ) -> Any:
        """One request; assert its status; its JSON (or None)."""
        resp = await self.http.request(method, path, headers=bearer(token or self.admin), **kw)
        assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    async def person(self, org: str, role: str) -> Person:
        """A new user with `role` in the org, signed in."""
        name, password = f"{role}-{secrets.token_hex(4)}", f"Pw-{secrets.token_hex(8)}!"
        user = await self.call(
            "POST", "/api/v1/users", json={"username": name, "password": password}, expect=201
        )
        await self.call(
            "POST",
            f"/api/v1/orgs/{org}/members",
            json={"user": user["id"], "role": role},
            expect=201,
        )
        return Person(user["id"], name, await self.login(name, password))

    async def login(self, username: str, password: str) -> str:
        """A JWT."""
        resp = await self.http.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["access_token"]

    async def mcp(self, token: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One stateless MCP request through nginx."""
        name = params.get("name") or params.get("uri")
        resp = await self.http.post(
            "/mcp", json=modern(method, params), headers=modern_headers(method, token, name)
        )
        return resp.json()

    async def org(self) -> World:
        """An org with one of every object."""
        tag = secrets.token_hex(4)
        slug = f"org-{tag}"
        org = await self.call("POST", "/api/v1/orgs", json={"slug": slug}, expect=201)
        people = {role: await self.person(slug, role) for role in ROLES}
        team = await self.call(
            "POST", "/api/v1/teams", json={"name": f"team-{tag}", "org": slug}, expect=201
        )
        for role in ("member", "viewer"):
            await self.call(
                "POST",
                f"/api/v1/teams/{team['name']}/members",
                json={"user": people[role].id, "role": role},
                expect=201,
            )
        secret = f"secret-{secrets.token_hex(8)}"
        server = await self.call(
            "POST",
            "/api/v1/servers",
            json={
                "name": f"http-{tag}",
                "transport": "streamable-http",
                "url": self.upstream_url,
                "headers": {"Authorization": f"Bearer {secret}-header"},
                "org": org["id"],
            },
            expect=201,
        )
        await self.call(
            "POST",
            f"/api/v1/servers/{server['name']}/secrets",
            json={"key": "X-Org-Secret", "value": secret, "kind": "header"},
            expect=201,
        )
        stdio = await self.call(
            "POST",
            "/api/v1/servers",
            json={
                "name": f"stdio-{tag}",
                "transport": "stdio",
                "command": "python3",
                "args": [ECHO_SERVER],
                "env": {"ECHO_SECRET": secret},
                "org": org["id"],
            },
            expect=201,
        )
        source = await self.call(
            "POST",
            f"/api/v1/servers/{server['name']}/sources",
            json={"name": f"src-{tag}", "url": self.upstream_url},
            expect=201,
        )
        grant = await self.call(
            "POST",
            f"/api/v1/teams/{team['name']}/grants",
            json={"server": server["name"], "permissions": ["read", "execute", "write"]},
            expect=201,
        )
        await self.call(
            "POST",
            f"/api/v1/teams/{team['name']}/grants",
            json={"server": stdio["name"], "permissions": ["read", "execute", "write"]},
            expect=201,
        )
        member = people["member"]
        key = await self.call(
            "POST", "/api/v1/keys", member.token, json={"name": f"key-{tag}"}, expect=201
        )
        token = await self.call(
            "POST",
            f"/api/v1/orgs/{slug}/tokens",
            json={
                "name": f"tok-{tag}",
                "scopes": [f"admin:org:{slug}"],
                "grants": [{"server": server["name"], "permissions": ["execute"]}],
            },
            expect=201,
        )
        rule = await self.call(
            "POST",
            "/api/v1/alerts/rules",
            people["admin"].token,
            json={
                "name": f"rule-{tag}",
                "kind": "error_rate",
                "threshold": 0.5,
                "server": server["name"],
                "org": org["id"],
            },
            expect=201,
        )
        call_id = await self.tool_call(people["admin"].token, key["key"], server, stdio)
        catalog = await self.catalog(org["id"], slug, tag)
        world = World(
            id=org["id"],
            slug=slug,
            people=people,
            team=team,
            server=server,
            stdio=stdio,
            source=source,
            grant=grant,
            key=key["key"],
            key_id=key["id"],
            token=token["token"],
            token_id=token["id"],
            rule=rule,
            call_id=call_id,
            secret=secret,
            catalog=catalog,
        )
        world.markers = catalog.markers() | {
            org["id"],
            slug,
            team["name"],
            team["id"],
            server["name"],
            server["id"],
            stdio["name"],
            stdio["id"],
            source["id"],
            source["name"],
            grant["id"],
            key["id"],
            key["prefix"],
            token["id"],
            token["prefix"],
            rule["id"],
            rule["name"],
            call_id,
            secret,
            *(p.id for p in people.values()),
            *(p.username for p in people.values()),
        }
        return world

    async def catalog(self, org: str, slug: str, tag: str) -> Catalog:
        """The org's catalog objects.

        A private MCP with a version scanned in the sandbox, a policy naming it, an approval of
        the version and a PDF report of its snapshot."""
        mcp = await self.call(
            "POST", "/api/v1/mcps", json={"name": f"mcp-{tag}", "org": org}, expect=201
        )
        resp = await self.http.post(
            f"/api/v1/mcps/{mcp['id']}/versions",
            params={"version": f"v-{tag}"},
            content=tarballs.clean(),
            headers={**bearer(self.admin), "Content-Type": "application/gzip"},
        )
        assert resp.status_code == 201, resp.text
        version = resp.json()
        base = f"/api/v1/mcps/{mcp['id']}/versions/{version['id']}"
        async with asyncio.timeout(90):
            while (await self.call("GET", base))["status"] in ("PENDING", "SCANNING"):
                await asyncio.sleep(0.3)
        snapshot = await self.call("GET", f"{base}/snapshot/latest")
        policy = await self.call(
            "POST",
            f"/api/v1/orgs/{slug}/policies",
            json={
                "name": f"pol-{tag}",
                "action": "REQUIRE_APPROVAL",
                "target_type": "NAME",
                "target_value": mcp["name"],
            },  # fmt: skip
            expect=201,
        )
        await self.call(
            "POST",
            f"/api/v1/orgs/{slug}/policies/approvals",
            json={"mcp": mcp["name"], "version": version["visible_version"]},
            expect=201,
        )
        report = await self.call(
            "POST", f"/api/v1/orgs/{slug}/reports", json={"snapshot_id": snapshot["id"]}, expect=202
        )
        async with asyncio.timeout(30):
            while (await self.call("GET", f"/api/v1/orgs/{slug}/reports/{report['id']}"))[
                "status"
            ] == "PENDING":
                await asyncio.sleep(0.2)
        return Catalog(mcp, version, snapshot["id"], policy, report)

    async def tool_call(
        self, admin: str, key: str, server: dict[str, Any], stdio: dict[str, Any]
    ) -> str:
        """The member calls both servers' tools; the id of the remote call's audit record.

        The stdio one starts its process."""
        for name, args in (
            (f"{server['name']}__temperature", {"city": "Oslo"}),
            (f"{stdio['name']}__echo", {"text": "hello"}),
        ):
            async with asyncio.timeout(30):
                while True:
                    answer = await self.mcp(key, "tools/call", {"name": name, "arguments": args})
                    if "result" in answer:
                        break
                    await asyncio.sleep(0.1)
        async with asyncio.timeout(10):
            while True:
                found = await self.call(
                    "GET", "/api/v1/audit/calls", admin, params={"server": server["name"]}
                )
                if found["items"]:
                    return found["items"][0]["id"]
                await asyncio.sleep(0.1)
