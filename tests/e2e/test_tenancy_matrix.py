"""The tenancy matrix (docs/TENANCY.md): every route × every org A role × every org B object.

Every route of every service × every role of org A × every object of org B, through nginx on the
real stack. No cross-org read or write succeeds: an item route answers 404, exactly as for an
object that does not exist; a list omits org B's objects; MCP, the legacy SSE transport and the
WebSockets show org A nothing of org B.

The routes come from the five apps' route tables (`app.routes`), so a new route cannot be left
out: each must match a rule of RULES, or the matrix fails naming it. A failure names the route,
the method, the caller and the object.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import websockets
from starlette.routing import Route, WebSocketRoute
from websockets.exceptions import InvalidHandshake

from libs.devstack.harness import settings_for
from libs.devstack.stack import Stack
from tests.e2e.gateway_support import admin_token, bearer, modern, modern_headers
from tests.e2e.tenancy_world import ROLES, Builder, World
from tests.support.sse import events_of, stream_events
from tests.support.upstreams import make_upstream, run_upstream

ITEM, PLATFORM, LIST, CREATE, OWN, PUBLIC, MCP, WS = (
    "item",
    "platform",
    "list",
    "create",
    "own",
    "public",
    "mcp",
    "ws",
)
CALLERS = (*ROLES, "api_key", "service_token")
SUCCESS = range(200, 300)


@dataclass(frozen=True)
class Rule:
    """How the matrix treats a route: its kind, and the body each method sends.

    The bodies are valid, so that only the object decides the answer."""

    kind: str
    why: str = ""  # for OWN and PLATFORM routes: why no org's object is behind them
    bodies: dict[str, Callable[[World, World], Any]] | None = None
    platform: tuple[str, ...] = ()  # methods of an item route only a platform admin may use


def body(**by_method: Callable[[World, World], Any]) -> dict[str, Callable[[World, World], Any]]:
    """Bodies by method; each is given (org A, org B)."""
    return by_method


SERVER_PATCH = body(PATCH=lambda a, b: {"description": "x"}, PUT=lambda a, b: {"description": "x"})
ROLE = lambda a, b: {"role": "member"}  # noqa: E731
POLICY = lambda a, b: {  # noqa: E731
    "name": f"p-{secrets.token_hex(3)}",
    "action": "DENY",
    "target_type": "NAME",
    "target_value": "x",
}
APPROVAL = lambda a, b: {  # noqa: E731
    "mcp": b.catalog.mcp["name"],
    "version": b.catalog.version["visible_version"],
}
TEAMS = r"(/api/v1/(teams|groups)|/api/v1/orgs/\{org\}/areas)"
# first match wins; every route must match one
RULES: list[tuple[str, Rule]] = [
    # ---- auth: the caller's own session and credentials, and public documents
    (
        r"^/api/v1/auth/(login|refresh|logout|change-password|login-form|logout-form)$",
        Rule(OWN, "the caller's own sign-in and session"),
    ),  # fmt: skip
    (r"^/api/v1/auth/mfa/", Rule(OWN, "the caller's own second factor")),
    (r"^/api/v1/auth/invites/accept$", Rule(OWN, "an invite token the caller holds")),
    (r"^/api/v1/auth/setup$", Rule(PUBLIC, "first-start setup (409 once done)")),
    (r"^/api/v1/auth/(me|verify)$", Rule(LIST)),
    (r"^/api/v1/auth/(admin-token|signing-keys)/rotate$", Rule(PLATFORM, "platform keys")),
    (r"^(/api/v1/auth/jwks\.json|/\.well-known/.*)$", Rule(PUBLIC, "key and OAuth metadata")),
    (r"^/oauth/", Rule(OWN, "the caller's own OAuth clients and grants")),
    # ---- users: platform-wide people; another user is not shown (404)
    (r"^/api/v1(/admin)?/users(/bulk/.*)?$", Rule(PLATFORM, "managing users")),
    (
        r"^/api/v1(/admin)?/users/\{user\}/(plan|role|suspend|activate)$",
        Rule(PLATFORM, "a user's plan, role and status"),
    ),  # fmt: skip
    (
        r"^/api/v1(/admin)?/users/\{user\}$",
        Rule(
            ITEM,
            bodies=body(
                PATCH=lambda a, b: {"display_name": "x"}, PUT=lambda a, b: {"display_name": "x"}
            ),
            platform=("DELETE",),
        ),
    ),  # fmt: skip
    # ---- orgs, members, invites, tokens, areas
    (r"^/api/v1(/admin)?/orgs$", Rule(LIST, bodies=body(POST=lambda a, b: {"slug": "x"}))),
    (r"^/api/v1(/admin)?/orgs/\{org\}/(plan|suspend|activate)$", Rule(PLATFORM, "org plans")),
    (r"^/api/v1/orgs/\{org\}/audit-events$", Rule(ITEM)),
    (
        r"^/api/v1/orgs/\{org\}/members(/\{user\}(/role)?)?$",
        Rule(
            ITEM,
            bodies=body(
                POST=lambda a, b: {"user": a.people["member"].id, "role": "member"},
                PATCH=ROLE,
                PUT=ROLE,
            ),
        ),
    ),  # fmt: skip
    (
        r"^/api/v1/orgs/\{org\}/(users/invite|invites)$",
        Rule(ITEM, bodies=body(POST=lambda a, b: {"email": "x@example.com"})),
    ),  # fmt: skip
    (r"^/api/v1/orgs/\{org\}/roles$", Rule(ITEM)),
    (
        r"^/api/v1/orgs/\{org\}/tokens(/\{id\})?$",
        Rule(ITEM, bodies=body(POST=lambda a, b: {"name": "t", "scopes": [f"read:org:{b.slug}"]})),
    ),
    (
        r"^/api/v1(/admin)?/orgs/\{org\}$",
        Rule(
            ITEM,
            bodies=body(
                PATCH=lambda a, b: {"display_name": "x"}, PUT=lambda a, b: {"display_name": "x"}
            ),
            platform=("DELETE",),
        ),
    ),
    # ---- teams (= groups = areas), their members and grants
    (
        r"^/api/v1/(teams|groups)$",
        Rule(
            CREATE,
            bodies=body(POST=lambda a, b: {"name": f"t-{secrets.token_hex(3)}", "org": b.slug}),
        ),
    ),  # fmt: skip
    (
        rf"^{TEAMS}/\{{team\}}/members$",
        Rule(
            ITEM, bodies=body(POST=lambda a, b: {"user": b.people["viewer"].id, "role": "member"})
        ),
    ),
    (
        rf"^{TEAMS}/\{{team\}}/members/\{{user\}}(/role)?$",
        Rule(ITEM, bodies=body(PATCH=ROLE, PUT=ROLE)),
    ),
    (
        rf"^{TEAMS}/\{{team\}}/(grants|servers)$",
        Rule(
            ITEM,
            bodies=body(POST=lambda a, b: {"server": b.server["name"], "permissions": ["read"]}),
        ),
    ),  # fmt: skip
    (
        rf"^{TEAMS}(/\{{team\}}.*)?$",
        Rule(
            ITEM,
            bodies=body(
                POST=lambda a, b: {"name": f"t-{secrets.token_hex(3)}"},
                PATCH=lambda a, b: {"description": "x"},
                PUT=lambda a, b: {"description": "x"},
            ),
        ),
    ),  # fmt: skip
    # ---- API keys and service tokens of the caller
    (
        r"^/api/v1/keys$",
        Rule(CREATE, bodies=body(POST=lambda a, b: {"name": "k", "teams": [b.team["name"]]})),
    ),
    (r"^/api/v1/keys/\{id\}$", Rule(ITEM)),
    (r"^/api/v1/tokens$", Rule(LIST)),
    # ---- registry
    (r"^/api/v1(/servers)?/export$", Rule(LIST)),
    (
        r"^/api/v1(/servers)?/import$",
        Rule(OWN, "imports into the caller's org; a document's org is not taken (registry tests)"),
    ),
    (r"^/api/v1/servers/(sync|sync-modelscope|analyze-all)$", Rule(PLATFORM, "catalog sync")),
    (
        r"^/api/v1/servers$",
        Rule(
            CREATE,
            bodies=body(
                POST=lambda a, b: {
                    "name": f"s-{secrets.token_hex(3)}",
                    "transport": "stdio",
                    "command": "x",
                    "enabled": False,
                    "org": b.slug,
                }
            ),
        ),
    ),  # fmt: skip
    (
        r"^/api/v1/servers/\{name\}/shares(/\{org\})?$",
        Rule(ITEM, bodies=body(POST=lambda a, b: {"org": a.id})),
    ),
    (
        r"^/api/v1/servers/\{name\}/call-tool$",
        Rule(
            ITEM,
            bodies=body(POST=lambda a, b: {"tool_name": "temperature", "arguments": {"city": "x"}}),
        ),
    ),  # fmt: skip
    (
        r"^/api/v1/servers/\{name\}/secrets(/\{key\})?$",
        Rule(
            ITEM,
            bodies=body(
                POST=lambda a, b: {"key": "K", "value": "v", "kind": "header"},
                PUT=lambda a, b: {"value": "v", "kind": "header"},
            ),
        ),
    ),  # fmt: skip
    (
        r"^/api/v1/servers/\{name\}/sources$",
        Rule(ITEM, bodies=body(POST=lambda a, b: {"name": "n", "url": "http://127.0.0.1:9/mcp"})),
    ),
    (
        r"^/api/v1/servers/\{name\}/disabled-tools$",
        Rule(ITEM, bodies=body(PUT=lambda a, b: {"tools": []})),
    ),
    (
        r"^/api/v1/servers/\{name\}/tools/\{tool\}$",
        Rule(ITEM, bodies=body(PATCH=lambda a, b: {"enabled": True})),
    ),
    (
        r"^/api/v1/servers/\{name\}/toggle$",
        Rule(ITEM, bodies=body(POST=lambda a, b: {"enabled": True})),
    ),
    (r"^/api/v1/servers/\{name\}.*$", Rule(ITEM, bodies=SERVER_PATCH)),
    (r"^/api/v1/tools$", Rule(LIST)),
    (
        r"^/api/v1/sources/\{id\}(/discover|/import)?$",
        Rule(
            ITEM,
            bodies=body(
                PUT=lambda a, b: {"description": "x"}, POST=lambda a, b: {"tools": ["temperature"]}
            ),
        ),
    ),  # fmt: skip
    (r"^/api/v1/(settings|config)(/.*)?$", Rule(PLATFORM, "platform settings")),
    (r"^/api/v1/export/servers$", Rule(LIST)),
    (r"^/api/v1/export/servers/\{ref\}$", Rule(ITEM)),
    (
        r"^/api/v1/export/import$",
        Rule(OWN, "imports into the caller's org; a document's org is not taken (registry tests)"),
    ),
    (r"^/$", Rule(LIST)),
    (r"^/edit/\{service_path\}$", Rule(ITEM)),
    # ---- the certification catalog (docs/CATALOG.md)
    (
        r"^/api/v1/(mcps|catalog)$",
        Rule(
            CREATE,
            bodies=body(POST=lambda a, b: {"name": f"m-{secrets.token_hex(3)}", "org": b.slug}),
        ),
    ),  # fmt: skip
    (
        r"^/api/v1/mcps/\{mcp\}(/.*)?$",
        Rule(
            ITEM,
            bodies=body(
                PATCH=lambda a, b: {"description": "x"},
                PUT=lambda a, b: {"description": "x"},
                POST=lambda a, b: {"source": "git", "url": "https://github.com/x/y"},
            ),
        ),
    ),  # fmt: skip
    (r"^/api/v1/admin/(mcps|categories|tags)(/.*)?$", Rule(PLATFORM, "catalog curation")),
    (r"^/v0\.1/servers$", Rule(LIST)),
    (r"^/v0\.1/servers/\{name\}/versions(/\{version\})?$", Rule(ITEM)),
    (
        r"^/api/v1/policies(/approvals|/\{id\})?$",
        Rule(OWN, "the caller's own org's policies (/api/v1/orgs/{org}/policies: the matrix's)"),
    ),
    (
        r"^/api/v1/(orgs/\{org\}/)?policies/approvals$",
        Rule(ITEM, bodies=body(POST=APPROVAL, DELETE=APPROVAL)),
    ),
    (
        r"^/api/v1/(orgs/\{org\}/)?policies(/\{id\})?$",
        Rule(
            ITEM,
            bodies=body(
                POST=lambda a, b: {
                    "name": f"p-{secrets.token_hex(3)}",
                    "action": "DENY",
                    "target_type": "NAME",
                    "target_value": "x",
                },
                PATCH=lambda a, b: {"description": "x"},
                PUT=lambda a, b: {"description": "x"},
            ),
        ),
    ),  # fmt: skip
    (
        r"^/api/v1/ci/evaluate$",
        Rule(
            ITEM,
            bodies=body(
                POST=lambda a, b: {"org_id": b.slug, "mcps": [{"name": b.catalog.mcp["name"]}]}
            ),
        ),
    ),  # fmt: skip
    (
        r"^/api/v1/orgs/\{org\}/reports(/.*)?$",
        Rule(ITEM, bodies=body(POST=lambda a, b: {"snapshot_id": b.catalog.snapshot_id})),
    ),
    (r"^/api/v1/webhooks/", Rule(PUBLIC, "signed by the provider, not by a credential")),
    # ---- gateway
    (r"^(/mcp|/sse|/messages)(/.*)?$", Rule(MCP)),
    # ---- sandbox
    (r"^/api/v1/sandbox/status$", Rule(LIST)),
    (
        r"^/api/v1/sandbox/servers/\{name\}/allowed-hosts$",
        Rule(
            ITEM,
            bodies=body(
                POST=lambda a, b: {"hosts": ["example.com"]},
                DELETE=lambda a, b: {"hosts": ["example.com"]},
            ),
        ),
    ),  # fmt: skip
    (r"^/api/v1/sandbox/servers/\{name\}/.*$", Rule(ITEM)),
    (
        r"^/api/v1/sandbox/(tools|policy|modules|files)(/.*)?$",
        Rule(PLATFORM, "code tools, policy, modules and files are the platform's"),
    ),
    (
        r"^/api/v1/sandbox/approvals/modules$",
        Rule(OWN, "a request for a platform module, decided by platform admins"),
    ),
    (
        r"^/api/v1/sandbox/approvals(/.*)?$",
        Rule(PLATFORM, "decided by platform admins (the default policy)"),
    ),
    # ---- audit
    (r"^/api/v1/health$", Rule(PUBLIC, "the platform's health")),
    (
        r"^/api/v1/(admin/audit|health/detail|monitoring|audit/retention)(/.*)?$",
        Rule(PLATFORM, "platform-wide monitoring"),
    ),
    (r"^/api/v1/audit/calls/\{id\}$", Rule(ITEM)),
    (r"^/api/v1/(audit|activity|dashboard)(/.*)?$", Rule(LIST)),
    (
        r"^/api/v1/alerts/rules/\{id\}$",
        Rule(ITEM, bodies=body(PATCH=lambda a, b: {"threshold": 0.9})),
    ),
    (
        r"^/api/v1/alerts(/rules)?$",
        Rule(
            CREATE,
            bodies=body(
                POST=lambda a, b: {
                    "name": f"r-{secrets.token_hex(3)}",
                    "kind": "error_rate",
                    "threshold": 0.5,
                    "org": b.id,
                }
            ),
        ),
    ),  # fmt: skip
    (r"^/ws/", Rule(WS)),
    (r"^/api/v1/terminal/ws$", Rule(PLATFORM, "the terminal is the platform admin's")),
    # ---- every service's own probes (not routed by nginx: nginx answers 404)
    (r"^/(healthz|readyz|metrics|openapi\.json)$", Rule(PUBLIC, "service probes")),
]


def app_routes() -> list[tuple[str, str, str]]:
    """(service, method, path template) of every route of the five apps, from `app.routes`."""
    from services.audit.app import create_app as audit_app
    from services.audit.settings import AuditSettings
    from services.auth.app import create_app as auth_app
    from services.auth.settings import AuthSettings
    from services.gateway.app import create_app as gateway_app
    from services.gateway.settings import GatewaySettings
    from services.registry.app import create_app as registry_app
    from services.registry.settings import RegistrySettings
    from services.sandbox.app import create_app as sandbox_app
    from services.sandbox.settings import SandboxSettings

    where = {"pg_url": "postgresql://unused/x", "nats_url": "nats://unused:1", "namespace": "x"}
    key = base64.b64encode(os.urandom(32)).decode()
    apps = {
        "auth": auth_app(settings_for(AuthSettings, **where)),
        "registry": registry_app(settings_for(RegistrySettings, REGISTRY_MASTER_KEY=key, **where)),
        "gateway": gateway_app(settings_for(GatewaySettings, **where)),
        "sandbox": sandbox_app(settings_for(SandboxSettings, **where)),
        "audit": audit_app(settings_for(AuditSettings, **where)),
    }
    out = []
    for service, app in apps.items():
        for route in app.routes:
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", getattr(route, "path", ""))
            if isinstance(route, WebSocketRoute):
                out.append((service, "WS", path))
            elif isinstance(route, Route):
                out += [(service, m, path) for m in sorted((route.methods or set()) - {"HEAD"})]
            else:
                out.append((service, type(route).__name__, path))
    return out


def rule_of(path: str) -> Rule | None:
    """The first rule matching a route's path."""
    return next((rule for pattern, rule in RULES if re.match(pattern, path)), None)


def fill(path: str, b: World, ghost: bool = False) -> tuple[str, str]:
    """The path with org B's objects (or nonexistent ones) in its parameters, and what they are."""
    sandbox = path.startswith("/api/v1/sandbox/")
    server = b.stdio if sandbox else b.server
    by_id = {
        "/api/v1/keys/": b.key_id,
        "/api/v1/orgs/{org}/tokens/": b.token_id,
        "/api/v1/sources/": b.source["id"],
        "/api/v1/alerts/rules/": b.rule["id"],
        "/api/v1/audit/calls/": b.call_id,
        "/api/v1/admin/audit/users/": b.people["member"].id,
        "/api/v1/admin/audit/orgs/": b.id,
        "/api/v1/sandbox/approvals/": str(uuid.uuid4()),
        "/api/v1/orgs/{org}/policies/": b.catalog.policy["id"],
        "/api/v1/policies/": b.catalog.policy["id"],
    }
    values = {
        "name": server["name"],
        "path": server["path"],
        "tool": "echo" if sandbox else "temperature",
        "key": "X-Org-Secret",
        "team": b.team["name"],
        "user": b.people["member"].id,
        "grant": b.grant["id"],
        "org": b.slug,
        "id": next((v for prefix, v in by_id.items() if path.startswith(prefix)), ""),
        "kind": "network",
        "ref": server["id"] if path.startswith("/api/v1/export/") else "x",
        "n": "1",
        "mcp": b.catalog.mcp["id"],
        "version": b.catalog.version["id"],
        "report": b.catalog.report["id"],
        "service_path": server["path"].strip("/"),
    }
    if path.startswith("/v0.1/"):  # the subregistry names an MCP and a version by name
        values.update(name=b.catalog.mcp["name"], version=b.catalog.version["visible_version"])
    if ghost:
        uuids = ("id", "user", "org", "mcp", "version", "report", "ref")
        values = {k: str(uuid.uuid4()) if k in uuids else f"ghost-{k}" for k in values}
        values["kind"] = "network"
    names = re.findall(r"\{(\w+)\}", path)
    what = ", ".join(f"{n}={values[n]}" for n in names)
    if "{name}" in path:
        what = f"{'stdio' if sandbox else 'remote'} server {what}"
    return path.format(**{n: values[n] for n in names}), what


@dataclass
class Matrix:
    """What the matrix found: its size and its failures."""

    requests: int = 0
    routes: int = 0
    failures: list[str] | None = None

    def fail(self, text: str) -> None:
        """Record one failure."""
        assert self.failures is not None
        self.failures.append(text)


@pytest.fixture(scope="module")
async def stack_api(e2e_stack: Stack) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
    """nginx, the platform admin's JWT, and an upstream MCP server both orgs register."""
    async with (
        run_upstream(make_upstream()) as upstream,
        # a connection per request: a keep-alive connection nginx closes just as the next
        # request goes out on it ("Server disconnected without sending a response", seen once
        # under CI load) is a race of the transport, not an answer of the platform
        httpx.AsyncClient(
            base_url=e2e_stack.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        ) as http,
    ):
        yield http, await admin_token(http), upstream


@pytest.fixture(scope="module")
async def orgs(stack_api: tuple[httpx.AsyncClient, str, str]) -> tuple[World, World]:
    """Org A (the callers) and org B (the objects)."""
    http, admin, upstream = stack_api
    builder = Builder(http, admin, upstream)
    return await builder.org(), await builder.org()


def credential(a: World, caller: str) -> dict[str, str]:
    """The headers a caller of org A sends."""
    if caller == "api_key":
        return {"X-API-Key": a.key}
    if caller == "service_token":
        return bearer(a.token)
    return bearer(a.people[caller].token)


def leaks(text: str, b: World, said: str = "") -> list[str]:
    """Org B's markers found in a response, but for those the caller itself said.

    A 404 may repeat the reference it was given."""
    return sorted(m for m in b.markers if m in text and m not in said)


async def test_every_route_answers_org_a_nothing_of_org_b(
    stack_api: tuple[httpx.AsyncClient, str, str], orgs: tuple[World, World]
) -> None:
    http, admin, _ = stack_api
    a, b = orgs
    matrix = Matrix(failures=[])
    routes = app_routes()
    matrix.routes = len(routes)
    for service, method, path in routes:
        rule = rule_of(path)
        if rule is None:
            matrix.fail(f"{service} {method} {path}: no rule says how tenancy applies to it")
            continue
        if rule.kind in (OWN, MCP, WS):  # OWN: nobody else's; MCP, WS: the tests below
            continue
        if (
            rule.kind == PLATFORM
            or method in rule.platform
            or (rule.kind == LIST and method != "GET")
        ):
            await platform_route(http, matrix, method, path, a, b)
        elif rule.kind == PUBLIC:
            await public_route(http, matrix, method, path, b)
        elif rule.kind == LIST:
            await list_route(http, matrix, method, path, a, b)
        elif rule.kind == CREATE:
            await create_route(http, matrix, rule, method, path, a, b)
        else:
            await item_route(http, matrix, rule, method, path, a, b, admin)
    kinds: dict[str, int] = {}
    for _, _, path in routes:
        kind = (rule_of(path) or Rule("unclassified")).kind
        kinds[kind] = kinds.get(kind, 0) + 1
    print(
        f"\ntenancy matrix: {matrix.routes} routes ({kinds}) x {len(CALLERS)} callers of org A"
        f" against org B's objects: {matrix.requests} requests"
    )
    assert not matrix.failures, "\n".join(matrix.failures)


async def send(
    http: httpx.AsyncClient, matrix: Matrix, method: str, path: str, headers: dict, json: Any
) -> httpx.Response:
    """One request of the matrix."""
    matrix.requests += 1
    if method == "GET":
        return await http.get(path, headers=headers)
    return await http.request(method, path, headers=headers, json=json)


async def item_route(
    http: httpx.AsyncClient,
    matrix: Matrix,
    rule: Rule,
    method: str,
    path: str,
    a: World,
    b: World,
    admin: str,
) -> None:
    """Org B's object: 404 for every caller of org A, as for an object that does not exist."""
    make = (rule.bodies or {}).get(method)
    payload = make(a, b) if make else None
    real, what = fill(path, b)
    ghost, _ = fill(path, b, ghost=True)
    if method == "GET":  # the path names a real object: the platform admin reads it
        seen = await send(http, matrix, "GET", real, bearer(admin), None)
        if seen.status_code not in SUCCESS:
            matrix.fail(f"GET {path} [{what}]: the platform admin got {seen.status_code}")
    for caller in CALLERS:
        headers = credential(a, caller)
        resp = await send(http, matrix, method, real, headers, payload)
        missing = await send(http, matrix, method, ghost, headers, payload)
        where = f"{method} {path} as org A's {caller} on org B's {what}"
        # 403 only where the caller may not use the route at all (a missing object: 403 too)
        wrong = resp.status_code != 404 and (
            caller in ("owner", "admin") or resp.status_code != 403
        )
        sent = real + orjson.dumps(payload).decode()
        judge(matrix, where, resp, missing, "one", b, sent, wrong)


async def platform_route(
    http: httpx.AsyncClient, matrix: Matrix, method: str, path: str, a: World, b: World
) -> None:
    """A platform admin's route: refused to every caller of org A, whatever it names."""
    if method not in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        return
    real, what = fill(path, b)
    for caller in CALLERS:
        resp = await send(http, matrix, method, real, credential(a, caller), {})
        if resp.status_code in SUCCESS or resp.status_code not in (403, 404, 405, 422):
            matrix.fail(f"{method} {path} as org A's {caller} [{what}]: {resp.status_code}")
        elif leaked := leaks(resp.text, b, real):
            matrix.fail(f"{method} {path} as org A's {caller}: the answer names {leaked}")


async def public_route(
    http: httpx.AsyncClient, matrix: Matrix, method: str, path: str, b: World
) -> None:
    """An unauthenticated surface: it names none of org B's objects."""
    if method != "GET":
        return
    resp = await send(http, matrix, "GET", path, {}, None)
    if leaked := leaks(resp.text, b):
        matrix.fail(f"GET {path} without a credential names {leaked}")


LIST_FILTERS = ("org", "server", "team", "server_name", "user", "principal", "target", "q")


async def list_route(
    http: httpx.AsyncClient, matrix: Matrix, method: str, path: str, a: World, b: World
) -> None:
    """A list: org B's objects are left out, also when a filter names them."""
    if method != "GET":
        return
    aimed = {
        "org": b.slug,
        "server": b.server["name"],
        "team": b.team["name"],
        "server_name": b.stdio["name"],
        "user": b.people["member"].id,
        "principal": b.people["member"].id,
        "target": b.server["name"],
        "q": b.server["name"],
    }
    for caller in CALLERS:
        for params in ({}, aimed):
            matrix.requests += 1
            resp = await http.get(path, params=params, headers=credential(a, caller))
            if leaked := leaks(resp.text, b, " ".join(params.values())):
                shown = "filtered on org B" if params else "unfiltered"
                matrix.fail(f"GET {path} ({shown}) as org A's {caller}: names {leaked}")


async def create_route(
    http: httpx.AsyncClient,
    matrix: Matrix,
    rule: Rule,
    method: str,
    path: str,
    a: World,
    b: World,
) -> None:
    """A collection: its list omits org B's objects.

    A create naming org B is refused as for an org that does not exist."""
    if method == "GET":
        await list_route(http, matrix, method, path, a, b)
        return
    make = (rule.bodies or {}).get(method)
    if make is None:
        matrix.fail(f"{method} {path}: no body naming org B for the create")
        return
    payload = make(a, b)
    ghostly = {k: (str(uuid.uuid4()) if v in (b.id, b.slug) else v) for k, v in payload.items()}
    if "teams" in payload:
        ghostly["teams"] = [f"ghost-{secrets.token_hex(3)}"]
    for caller in CALLERS:
        headers = credential(a, caller)
        resp = await send(http, matrix, method, path, headers, payload)
        missing = await send(http, matrix, method, path, headers, ghostly)
        where = f"{method} {path} as org A's {caller} into org B"
        judge(matrix, where, resp, missing, "org", b, orjson.dumps(payload).decode())


def judge(
    matrix: Matrix,
    where: str,
    resp: httpx.Response,
    missing: httpx.Response,
    missing_what: str,
    b: World,
    sent: str,
    not_404: bool = False,
) -> None:
    """Record the first way an answer about org B's object differs from one about a missing one.

    The ways: success, another status, a status other than 404 (`not_404`), or org B's names."""
    if resp.status_code in SUCCESS:
        matrix.fail(f"{where}: {resp.status_code} (succeeded) {resp.text[:200]}")
    elif resp.status_code != missing.status_code:
        matrix.fail(
            f"{where}: {resp.status_code}, but {missing.status_code} for a missing {missing_what}"
        )
    elif not_404:
        matrix.fail(f"{where}: {resp.status_code} {resp.text[:200]} (want 404)")
    elif leaked := leaks(resp.text, b, sent):
        matrix.fail(f"{where}: the answer names {leaked}")


# ---- MCP: /mcp, /mcp/{team}, /mcp/servers/{path}, both generations, and legacy SSE -------------


async def rpc(
    http: httpx.AsyncClient, path: str, headers: dict, method: str, params: dict[str, Any]
) -> httpx.Response:
    """One stateless (2026-07-28) request."""
    name = params.get("name") or params.get("uri")
    token = headers.get("Authorization", "")[7:] or headers.get("X-API-Key", "")
    return await http.post(
        path, json=modern(method, params), headers=modern_headers(method, token, name)
    )


async def session(http: httpx.AsyncClient, path: str, headers: dict) -> httpx.Response:
    """A legacy `initialize` at `path`."""
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "matrix", "version": "1"},
        },
    }
    return await http.post(
        path,
        json=init,
        headers={**headers, "Accept": "application/json, text/event-stream"},
    )


async def legacy(
    http: httpx.AsyncClient, headers: dict, sid: str, method: str, params: dict[str, Any]
) -> httpx.Response:
    """One request of a legacy session at /mcp."""
    body = {"jsonrpc": "2.0", "id": 2, "method": method, "params": params}
    return await http.post(
        "/mcp",
        json=body,
        headers={**headers, "Mcp-Session-Id": sid, "Accept": "application/json, text/event-stream"},
    )


def mcp_requests(b: World) -> list[tuple[str, dict[str, Any], bool]]:
    """(method, params, must fail) aimed at org B's servers through the aggregate endpoint."""
    name = b.server["name"]
    stations = f"switchboard://{name}/weather://stations"
    prompt = {"type": "ref/prompt", "name": f"{name}__ask_weather"}
    return [
        ("tools/list", {}, False),
        ("resources/list", {}, False),
        ("resources/templates/list", {}, False),
        ("prompts/list", {}, False),
        ("tools/call", {"name": f"{name}__temperature", "arguments": {"city": "x"}}, True),
        ("tools/call", {"name": f"{b.stdio['name']}__echo", "arguments": {"text": "x"}}, True),
        ("resources/read", {"uri": stations}, True),
        ("prompts/get", {"name": f"{name}__ask_weather", "arguments": {"city": "x"}}, True),
        ("completion/complete", {"ref": prompt, "argument": {"name": "city", "value": "O"}}, True),
    ]


async def test_mcp_shows_org_a_nothing_of_org_b_in_either_generation(
    stack_api: tuple[httpx.AsyncClient, str, str], orgs: tuple[World, World]
) -> None:
    http, _, _ = stack_api
    a, b = orgs
    failures: list[str] = []
    requests = 0
    for caller in CALLERS:
        headers = credential(a, caller)
        opened = await session(http, "/mcp", headers)
        sid = opened.headers.get("mcp-session-id", "")
        for method, params, must_fail in mcp_requests(b):
            for generation in ("2026-07-28", "2025-11-25"):
                requests += 1
                if generation == "2026-07-28":
                    resp = await rpc(http, "/mcp", headers, method, params)
                else:
                    resp = await legacy(http, headers, sid, method, params)
                where = f"/mcp {method} ({generation}) as org A's {caller}"
                answer = _json_of(resp)
                if must_fail and "result" in answer:
                    failures.append(f"{where}: succeeded on org B's server")
                if must_fail and (answer.get("error") or {}).get("code") != -32602:
                    failures.append(f"{where}: {answer} (want -32602, as for an unknown one)")
                if leaked := leaks(resp.text, b, orjson.dumps(params).decode()):
                    failures.append(f"{where}: names {leaked}")
        # one server's endpoint and one team's: not there, exactly like missing ones
        for path, ghost in (
            (f"/mcp/servers/{b.server['path']}", "/mcp/servers/ghost-server"),
            (f"/mcp/servers/{b.stdio['path']}", "/mcp/servers/ghost-server"),
            (f"/mcp/{b.team['name']}", "/mcp/ghost-team"),
        ):
            for verb in ("tools/list", "resources/list", "initialize"):
                requests += 2
                if verb == "initialize":
                    resp, missing = (
                        await session(http, path, headers),
                        await session(http, ghost, headers),
                    )
                else:
                    resp = await rpc(http, path, headers, verb, {})
                    missing = await rpc(http, ghost, headers, verb, {})
                where = f"POST {path} {verb} as org A's {caller}"
                if resp.status_code != 404 or missing.status_code != 404:
                    failures.append(f"{where}: {resp.status_code} (missing: {missing.status_code})")
                if leaked := leaks(resp.text, b, path):
                    failures.append(f"{where}: names {leaked}")
            for verb, suffix in (
                ("GET", ""),
                ("DELETE", ""),
                ("GET", "/sse"),
                ("POST", "/messages?session_id=x"),
                ("POST", "/messages/?session_id=x"),
            ):
                requests += 2
                status, text = await probe(http, verb, path + suffix, headers)
                missing, _ = await probe(http, verb, ghost + suffix, headers)
                if status in SUCCESS or status != missing:
                    failures.append(
                        f"{verb} {path}{suffix} as org A's {caller}: {status} (missing: {missing})"
                    )
                if leaked := leaks(text, b, path):
                    failures.append(f"{verb} {path}{suffix} as org A's {caller}: names {leaked}")
        requests += 1
        if leaked := await legacy_sse_leaks(http, headers, b):
            failures.append(f"GET /sse + POST /messages as org A's {caller}: names {leaked}")
    print(f"\ntenancy matrix (MCP): {requests} requests")
    assert not failures, "\n".join(failures)


async def probe(http: httpx.AsyncClient, method: str, path: str, headers: dict) -> tuple[int, str]:
    """Status and the first bytes of an answer that may be an endless stream (SSE)."""
    async with http.stream(method, path, headers=headers, json={}) as resp:
        got = b""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                async for chunk in resp.aiter_bytes():
                    got += chunk
                    if len(got) > 65536:
                        break
        return resp.status_code, got.decode(errors="replace")


def _json_of(resp: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of a response (JSON, or the last SSE event's data)."""
    body = resp.content
    if resp.headers.get("content-type", "").startswith("text/event-stream"):
        data = [event.data for event in events_of(body) if event.data]
        body = data[-1] if data else b"{}"
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


async def legacy_sse_leaks(http: httpx.AsyncClient, headers: dict, b: World) -> list[str]:
    """Org B's markers in what the legacy HTTP+SSE transport (/sse + /messages) lists."""
    seen = ""
    async with http.stream("GET", "/sse", headers=headers) as stream, asyncio.timeout(10):
        events = stream_events(stream)
        endpoint = ""
        async for event in events:
            if event.event == "endpoint":
                endpoint = event.data.decode().strip()
                break
        for rid, method in enumerate(("tools/list", "resources/list", "prompts/list"), 1):
            body = {"jsonrpc": "2.0", "id": rid, "method": method, "params": {}}
            await http.post(endpoint, json=body, headers=headers)
        answered = 0
        async for event in events:
            if event.data:
                seen += event.data.decode(errors="replace")
                answered += b'"id"' in event.data
                if answered == 3:
                    break
    return leaks(seen, b)


# ---- WebSockets: /ws/events channels, /ws/health_status, /ws/terminal ------------------------


def ws_url(http: httpx.AsyncClient, path: str) -> str:
    """The ws:// URL of a path through nginx."""
    return str(http.base_url).rstrip("/").replace("http://", "ws://") + path


async def events_socket(http: httpx.AsyncClient, token: str) -> Any:
    """/ws/events authenticated and subscribed to every channel (unfiltered)."""
    ws = await websockets.connect(ws_url(http, "/ws/events"))
    await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
    for channel in ("server-status", "health", "server-logs", "activity", "tool-calls",
                    "monitoring", "alerts"):  # fmt: skip
        await ws.send(orjson.dumps({"type": "subscribe", "channel": channel}).decode())
    return ws


async def drain(ws: Any, seconds: float) -> str:
    """Everything a socket received within `seconds`."""
    got = ""
    with contextlib.suppress(TimeoutError, websockets.ConnectionClosed):
        async with asyncio.timeout(seconds):
            while True:
                got += await ws.recv()
    return got


async def test_websockets_relay_org_a_nothing_of_org_b(
    stack_api: tuple[httpx.AsyncClient, str, str], orgs: tuple[World, World]
) -> None:
    http, admin, _ = stack_api
    a, b = orgs
    tokens = {c: credential(a, c) for c in CALLERS}
    raw = {c: (h.get("Authorization", "")[7:] or h["X-API-Key"]) for c, h in tokens.items()}
    sockets = {c: await events_socket(http, t) for c, t in raw.items()}
    control = await events_socket(http, b.people["admin"].token)  # org B sees its own
    failures: list[str] = []
    try:
        # org B works: calls on both servers (a log line from the hosted one), a status change
        member = b.key
        for name, args in (
            (f"{b.server['name']}__temperature", {"city": "x"}),
            (f"{b.stdio['name']}__log", {"text": "org-b-log-line"}),
        ):
            await rpc(
                http, "/mcp", {"X-API-Key": member}, "tools/call", {"name": name, "arguments": args}
            )
        for enabled in (False, True):
            await http.post(
                f"/api/v1/servers/{b.server['name']}/toggle",
                json={"enabled": enabled},
                headers=bearer(admin),
            )
        seen = await drain(control, 5)
        for wanted in (b.server["name"], b.stdio["name"]):
            if wanted not in seen:
                failures.append(f"org B's admin did not get the events of {wanted}: {seen[:300]}")
        for caller, ws in sockets.items():
            if leaked := leaks(await drain(ws, 1), b):
                failures.append(f"/ws/events as org A's {caller}: names {leaked}")
    finally:
        for ws in (*sockets.values(), control):
            await ws.close()
    async with websockets.connect(ws_url(http, "/ws/health_status")) as public:
        if leaked := leaks(await drain(public, 2), b):
            failures.append(f"/ws/health_status (public): names {leaked}")
    for caller, token in raw.items():
        with contextlib.suppress(InvalidHandshake, websockets.ConnectionClosed):
            async with websockets.connect(
                ws_url(http, "/ws/terminal"), additional_headers=bearer(token)
            ) as terminal:
                await terminal.recv()
                failures.append(f"/ws/terminal as org A's {caller}: opened")
    assert not failures, "\n".join(failures)
