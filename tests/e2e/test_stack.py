"""The whole stack through nginx: routing, nginx's own JSON errors, health, replicas."""

import asyncio
import secrets

import asyncpg
import httpx
import pytest

from libs.devstack import pgroles, postgres
from libs.devstack.services import SERVICES
from libs.devstack.stack import Stack
from tests.e2e.conftest import SecuredStack

DOWN_DEADLINE_S = 15


@pytest.fixture
async def api(e2e_stack: Stack) -> httpx.AsyncClient:
    """An HTTP client on nginx's public URL."""
    async with httpx.AsyncClient(base_url=e2e_stack.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("service", SERVICES)
async def test_every_service_answers_healthz_through_nginx(
    api: httpx.AsyncClient, service: str
) -> None:
    resp = await api.get(f"/healthz/{service}")
    assert resp.status_code == 200
    assert resp.json()["status"] == "ok"


async def test_platform_health_lists_all_five_services_up(api: httpx.AsyncClient) -> None:
    # the stack is shared by the worker's e2e modules, some of which restart NATS: a replica
    # still reconnecting has missed its beats for a moment, so poll for the steady state
    everyone = {service: "up" for service in SERVICES}
    statuses: dict[str, str] = {}
    try:
        async with asyncio.timeout(DOWN_DEADLINE_S):
            while statuses != everyone:
                resp = await api.get("/api/v1/health")
                assert resp.status_code == 200
                statuses = {s["service"]: s["status"] for s in resp.json()["services"]}
                if statuses != everyone:
                    await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"not all up within {DOWN_DEADLINE_S}s: {statuses}") from None


async def test_an_unknown_path_answers_nginx_json_not_found(api: httpx.AsyncClient) -> None:
    resp = await api.get("/no/such/path")
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["error"]["code"] == "NOT_FOUND"


async def test_an_oversized_body_answers_payload_too_large(api: httpx.AsyncClient) -> None:
    resp = await api.post("/api/v1/servers", content=b"x" * (5 * 1024 * 1024))
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_nginx_passes_the_caller_request_id_on(api: httpx.AsyncClient) -> None:
    resp = await api.get("/healthz/registry", headers={"X-Request-Id": "e2e-request-id"})
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "e2e-request-id"


async def test_two_replicas_started_together_on_a_fresh_database_both_start(
    e2e_stack: SecuredStack, pg_server: postgres.Postgres, namespace: str
) -> None:
    database = f"sbrace_{secrets.token_hex(4)}"
    url = await postgres.create_database(pg_server.url, database)
    # another database and namespace than the stack's: the admin's URL and NATS user
    env = {
        "REGISTRY_DATABASE_URL": url,
        "SWITCHBOARD_NAMESPACE": f"{namespace}race",
        **e2e_stack.nats_admin_env("registry"),
    }
    replicas = [e2e_stack.spawn("registry", env=env) for _ in range(2)]
    try:
        await asyncio.gather(*(e2e_stack.wait_replica_healthy(r, timeout=30) for r in replicas))
        async with httpx.AsyncClient(timeout=5) as client:
            for replica in replicas:
                resp = await client.get(f"{replica.url}/readyz")
                assert resp.status_code == 200
    finally:
        for replica in replicas:
            replica.stop()
        await postgres.drop_database(pg_server.url, database)


async def test_a_second_routed_replica_shows_in_platform_health(
    e2e_stack: Stack, api: httpx.AsyncClient
) -> None:
    replica = await e2e_stack.start_replica("registry")
    async with asyncio.timeout(DOWN_DEADLINE_S):
        while True:
            resp = await api.get("/api/v1/health")
            registry = next(s for s in resp.json()["services"] if s["service"] == "registry")
            up = {i["instance"] for i in registry["instances"] if i["status"] == "up"}
            if replica.instance in up:
                break
            await asyncio.sleep(0.2)
    resp = await api.get("/healthz/registry")
    assert resp.status_code == 200


async def test_a_killed_service_turns_down_within_the_heartbeat_window(e2e_stack: Stack) -> None:
    e2e_stack.kill("sandbox")
    try:
        async with asyncio.timeout(DOWN_DEADLINE_S):
            while await e2e_stack.service_status("sandbox") != "down":
                await asyncio.sleep(0.2)
    finally:
        await e2e_stack.restart("sandbox")
        await e2e_stack.wait_healthy(timeout=30)


async def test_a_service_keeps_an_idle_connection_longer_than_nginx_does(
    e2e_stack: Stack,
) -> None:
    """A service keeps an idle connection open longer than nginx does.

    nginx drops idle upstream connections after 60 s; a service that closed first (uvicorn's
    default is 5 s) would race nginx's next request on them, and a POST lost that way is a 502."""
    replica = next(r for r in e2e_stack.replicas_of("gateway") if r.alive())  # one may be killed
    reader, writer = await asyncio.open_connection(replica.host, replica.port)
    request = f"GET /healthz HTTP/1.1\r\nHost: {replica.address}\r\n\r\n".encode()

    async def exchange() -> bytes:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        return head.split(b"\r\n", 1)[0]

    try:
        async with asyncio.timeout(15):
            first = await exchange()
            await asyncio.sleep(6)  # past uvicorn's default keep-alive
            second = await exchange()
    finally:
        writer.close()
    assert first == second == b"HTTP/1.1 200 OK"


async def test_each_service_connects_to_postgres_as_its_own_role(e2e_stack: SecuredStack) -> None:
    conn = await asyncpg.connect(e2e_stack.admin_database_url)
    try:
        rows = await conn.fetch(
            "SELECT DISTINCT application_name, usename FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE 'switchboard-%'"
        )
        database = await conn.fetchval("SELECT current_database()")
    finally:
        await conn.close()
    seen = {(r["application_name"], r["usename"]) for r in rows}
    assert seen == {(f"switchboard-{s}", pgroles.role_name(database, s)) for s in SERVICES}


async def test_each_service_signs_in_to_nats_as_its_own_user(e2e_stack: SecuredStack) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        resp = await client.get(f"{e2e_stack.nats_monitor_url}/connz", params={"auth": "true"})
    connections = resp.json()["connections"]
    seen = {
        (c.get("name", ""), c.get("authorized_user"))
        for c in connections
        if c.get("name", "").startswith("switchboard-")
    }
    assert seen == {(f"switchboard-{s}", s) for s in SERVICES}
