"""Run the real auth service in-process and get real credentials from it, for any service's tests.

Usage (inside an async test or a session fixture)::

    from tests.support.auth import auth_service

    async with auth_service(pg_url, nats_url, namespace) as auth:
        admin = await auth.admin_token()                    # JWT of the platform admin user
        org = await auth.create_org()                       # {"id", "slug", ...}; unique slug
        team = await auth.create_team(org["slug"])          # {"id", "name", ...}; unique name
        alice = await auth.create_user()                    # User(id, username, password, token)
        await auth.add_member(team["name"], alice, "member")  # joins the org (member) and team
        auth.registry_url = registry_url                    # a registry of the same namespace
        github = await auth.server(org["id"])               # a server of the org (disabled)
        await auth.grant(team["name"], github["name"], ["read", "execute"], tools=["search"])
        await auth.share("code", org["id"])                 # a platform server lent to the org
        key = await auth.api_key(alice.token, teams=[team["name"]])    # "sbk_..."
        ci = await auth.service_token(org["slug"], [f"ci:org:{org['slug']}"])  # "sbt_..."
        resp = await auth.http.get("/api/v1/auth/me", headers=auth.bearer(alice.token))

- The app runs under uvicorn on a free port (`auth.url`), with its lifespan: migrations, the
  `rpc.auth.introspect` / `rpc.auth.jwks` responders on NATS and the outbox relay, so any other
  service started with the same `namespace` verifies these credentials for real.
- Grants name servers the registry knows (docs/TENANCY.md): set `registry_url` to a registry
  running in the same namespace; `server()` registers one in an org, `share()` lends one (a
  platform server, say) to an org, as the platform admin.
- The database is shared by the whole pytest session, so names are random by default and the
  platform admin (`ADMIN_USERNAME` / `ADMIN_PASSWORD`) is created at the first start and reused.
- `auth.admin_api_token` is the platform admin token (`sba_...`, SWITCHBOARD_ADMIN_TOKEN).
- A user's token is a JWT that stays valid for AUTH_ACCESS_TTL_S (900 s here).
- Hashing is argon2id with cheap parameters here so tests stay fast; `**env` overrides settings.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from libs.devstack.harness.auth import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    TEST_ENV,
    running_auth,
)
from libs.devstack.harness.auth import AuthRefused as AuthError
from libs.devstack.harness.auth import admin_token as fetch_admin_token

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USERNAME",
    "TEST_ENV",
    "AuthClient",
    "AuthError",
    "auth_service",
]


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class User:
    """A user created for a test, with a fresh access token."""

    id: str
    username: str
    password: str
    token: str


@dataclass(frozen=True)
class GrantedMember:
    """What `AuthClient.granted_member` made."""

    org: dict[str, Any]
    team: dict[str, Any]
    user: User
    key: str


class AuthClient:
    """Calls the running auth service as the platform admin (or as a given token)."""

    def __init__(self, url: str, http: httpx.AsyncClient, admin_api_token: str) -> None:
        self.url = url
        self.http = http
        self.admin_api_token = admin_api_token
        self._admin_jwt: str | None = None
        self.registry_url: str | None = None  # a registry in the same namespace, when one runs

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        """The Authorization header for `token`."""
        return {"Authorization": f"Bearer {token}"}

    async def call(
        self, method: str, path: str, token: str | None = None, expect: int = 200, **kw: Any
    ) -> Any:
        """Call auth as `token` (default: the admin) and return the JSON body; assert status."""
        headers = self.bearer(token or await self.admin_token())
        resp = await self.http.request(method, path, headers=headers, **kw)
        if resp.status_code != expect:
            raise AuthError(f"{method} {path} → {resp.status_code}: {resp.text}")
        return resp.json() if resp.content else None

    async def login(self, username: str, password: str, **extra: Any) -> dict[str, Any]:
        """POST /auth/login; returns the body (access_token, refresh_token, user)."""
        body = {"username": username, "password": password, **extra}
        resp = await self.http.post("/api/v1/auth/login", json=body)
        if resp.status_code != 200:
            raise AuthError(f"login {username} → {resp.status_code}: {resp.text}")
        return resp.json()

    async def admin_token(self) -> str:
        """A JWT of the platform admin user (created by setup on first use)."""
        if self._admin_jwt is None:
            self._admin_jwt = await fetch_admin_token(self.url)
        return self._admin_jwt

    async def create_user(
        self,
        username: str | None = None,
        password: str | None = None,
        platform_admin: bool = False,
        email: str | None = None,
    ) -> User:
        """Create a user and sign them in."""
        username = username or unique("user")
        password = password or f"Pw-{secrets.token_hex(8)}!"
        body = {
            "username": username,
            "password": password,
            "email": email,
            "platform_role": "platform_admin" if platform_admin else "user",
        }
        row = await self.call("POST", "/api/v1/users", json=body, expect=201)
        token = (await self.login(username, password))["access_token"]
        return User(row["id"], username, password, token)

    async def create_org(self, slug: str | None = None, **fields: Any) -> dict[str, Any]:
        """Create an org (the admin becomes its owner)."""
        slug = slug or unique("org")
        body = {"slug": slug, "name": fields.pop("name", slug), **fields}
        return await self.call("POST", "/api/v1/orgs", json=body, expect=201)

    async def add_org_member(self, org: str, user: User | str, role: str = "member") -> Any:
        """Make a user a member of an org with `role`."""
        ref = user.id if isinstance(user, User) else user
        resp = await self.http.post(
            f"/api/v1/orgs/{org}/members",
            json={"user": ref, "role": role},
            headers=self.bearer(await self.admin_token()),
        )
        if resp.status_code not in (200, 201):
            raise AuthError(f"add org member → {resp.status_code}: {resp.text}")
        return resp.json()

    async def create_team(self, org: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
        """Create a team in an org."""
        body = {"name": name or unique("team"), "org": org, **fields}
        return await self.call("POST", "/api/v1/teams", json=body, expect=201)

    async def add_member(self, team: str, user: User | str, role: str = "member") -> Any:
        """Put a user in a team (joining the team's org as a member first if needed)."""
        info = await self.call("GET", f"/api/v1/teams/{team}")
        ref = user.id if isinstance(user, User) else user
        members = await self.call("GET", f"/api/v1/orgs/{info['org_id']}/members")
        if not any(ref in (m["user_id"], m["username"]) for m in members["items"]):
            await self.add_org_member(info["org_id"], ref, "member")
        resp = await self.http.post(
            f"/api/v1/teams/{team}/members",
            json={"user": ref, "role": role},
            headers=self.bearer(await self.admin_token()),
        )
        if resp.status_code not in (200, 201):
            raise AuthError(f"add team member → {resp.status_code}: {resp.text}")
        return resp.json()

    async def grant(
        self, team: str, server: str, permissions: list[str], tools: list[str] | None = None
    ) -> dict[str, Any]:
        """Give a team permissions on a server (optionally only some tools)."""
        body = {"server": server, "permissions": permissions, "tools": tools}
        return await self.call("POST", f"/api/v1/teams/{team}/grants", json=body, expect=201)

    async def api_key(self, token: str, teams: list[str] | None = None, name: str = "test") -> str:
        """An API key (sbk_...) of the user whose token this is."""
        body = {"name": name, "teams": teams}
        return (await self.call("POST", "/api/v1/keys", token, json=body, expect=201))["key"]

    async def registry(self, method: str, path: str, expect: int, **kw: Any) -> Any:
        """Call the registry (`registry_url`) as the platform admin; assert the status."""
        if self.registry_url is None:
            raise AuthError("no registry_url: grants need a registry in the namespace")
        headers = self.bearer(await self.admin_token())
        async with httpx.AsyncClient(base_url=self.registry_url, timeout=20) as http:
            resp = await http.request(method, path, headers=headers, **kw)
        if resp.status_code != expect:
            raise AuthError(f"registry {method} {path} → {resp.status_code}: {resp.text}")
        return resp.json() if resp.content else None

    async def server(self, org: str | None, name: str | None = None, **fields: Any) -> Any:
        """Register a (disabled, never contacted) server in `org`, as the platform admin.

        `org` is an id or slug; None: the platform's."""
        body = {
            "name": name or unique("srv"),
            "transport": "streamable-http",
            "url": "http://127.0.0.1:9/mcp",
            "enabled": False,
            "org": org,
            **fields,
        }
        return await self.registry("POST", "/api/v1/servers", 201, json=body)

    async def share(self, server: str, org: str) -> Any:
        """Lend a server to an org (the platform admin's share)."""
        return await self.registry(
            "POST", f"/api/v1/servers/{server}/shares", 201, json={"org": org}
        )

    async def granted_member(
        self, server: str, permissions: list[str] | None = None, org: dict | None = None
    ) -> GrantedMember:
        """A new user in a new team of `org`, granted `permissions` on `server`, with an API key.

        `org` defaults to a new org, to which the platform server `server` is first lent; the
        team is granted `permissions` on `server`, and the API key is narrowed to that team. A
        `write` grant needs the server to be `org`'s own."""
        lent = org is None
        org = org or await self.create_org()
        team = await self.create_team(org["slug"])
        user = await self.create_user()
        await self.add_member(team["name"], user, "member")
        if lent:
            await self.share(server, org["id"])
        await self.grant(team["name"], server, permissions or ["read", "execute"])
        key = await self.api_key(user.token, teams=[team["name"]])
        return GrantedMember(org, team, user, key)

    async def service_token(
        self, org: str, scopes: list[str], expires_in_days: int | None = None
    ) -> str:
        """A service token (sbt_...) of an org with `scopes`."""
        body = {"name": unique("token"), "scopes": scopes, "expires_in_days": expires_in_days}
        return (await self.call("POST", f"/api/v1/orgs/{org}/tokens", json=body, expect=201))[
            "token"
        ]


@asynccontextmanager
async def auth_service(
    pg_url: str, nats_url: str, namespace: str, **env: Any
) -> AsyncIterator[AuthClient]:
    """Start the real auth service in-process and yield a client for it."""
    async with (
        running_auth(pg_url, nats_url, namespace, **env) as auth,
        httpx.AsyncClient(base_url=auth.url, timeout=10) as http,
    ):
        client = AuthClient(auth.url, http, auth.admin_api_token)
        client.app = auth.app  # type: ignore[attr-defined]
        client.settings = auth.settings  # type: ignore[attr-defined]
        yield client
