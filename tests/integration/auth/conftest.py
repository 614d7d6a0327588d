"""The auth service and a second service that verifies its credentials, once per session."""

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.app import build_app
from libs.common.authn import ServerRef, authenticate, require_grant
from libs.common.http import json_response
from libs.common.settings import Settings
from libs.devstack import postgres
from libs.devstack.harness import serving, settings_for, until
from libs.devstack.harness.registry import registry_settings
from services.registry.app import create_app as create_registry
from tests.support import package_isolation
from tests.support.auth import AuthClient, auth_service

EMPTY_MIGRATIONS = Path(__file__).parent / "probe_migrations"


@dataclass(frozen=True)
class ProbeSettings(Settings):
    """A stand-in for any other service."""

    service: ClassVar[str] = "authprobe"


WHOAMI = "/api/v1/probe/whoami"


async def refused_within(
    client: httpx.AsyncClient, headers: dict[str, str], seconds: float
) -> None:
    """Poll the probe service until the credential in `headers` gets 401 (within `seconds`)."""

    async def refused() -> bool:
        resp = await client.get(WHOAMI, headers=headers)
        if resp.status_code == 401:
            assert resp.json()["error"]["code"] == "UNAUTHENTICATED"
            return True
        assert resp.status_code == 200
        return False

    await until(refused, timeout=seconds, interval=0.02, what="a 401", retry_on=())


async def whoami(request: Request) -> Response:
    """A protected route: the caller's principal."""
    principal = await authenticate(request)
    return json_response(principal.to_dict())


async def call_tool(request: Request) -> Response:
    """A route that needs execute on a server's tool (the server: `?id=&org=`)."""
    principal = await authenticate(request)
    params = request.query_params
    server = ServerRef(params["id"], request.path_params["server"], org=params["org"])
    require_grant(principal, "execute", server, params["tool"])
    return json_response({"ok": True})


# this package runs in a NATS namespace and a database of its own
namespace, pg_url = package_isolation("aut")


@pytest.fixture(scope="package")
async def auth(pg_url: str, nats_url: str, namespace: str) -> AsyncIterator[AuthClient]:
    """The running auth service and an admin-capable client, with the real registry beside it.

    Grants name servers it knows (docs/TENANCY.md)."""
    settings = registry_settings(pg_url, nats_url, namespace)
    async with (
        auth_service(pg_url, nats_url, namespace) as client,
        serving(create_registry(settings)) as registry_url,
    ):
        client.registry_url = registry_url
        yield client


@pytest.fixture(scope="package")
async def probe(
    auth: AuthClient, pg_url: str, nats_url: str, namespace: str
) -> AsyncIterator[httpx.AsyncClient]:
    """Another service (built with build_app) whose routes verify credentials through auth."""
    settings = settings_for(ProbeSettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace)
    routes = [
        Route("/api/v1/probe/whoami", whoami, methods=["GET", "POST"]),
        Route("/api/v1/probe/servers/{server}/call", call_tool, methods=["POST"]),
    ]
    app = build_app(settings, routes, migrations=EMPTY_MIGRATIONS)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client


@pytest.fixture
async def fresh_db(pg_server: postgres.Postgres) -> AsyncIterator[str]:
    """An empty database for one test (for an auth service of the test's own)."""
    name = f"sbtest_auth_{secrets.token_hex(4)}"
    url = await postgres.create_database(pg_server.url, name)
    yield url
    await postgres.drop_database(pg_server.url, name)
