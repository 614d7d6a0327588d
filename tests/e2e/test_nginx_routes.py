"""deploy/nginx/nginx.conf routing, on real nginx, with one echo upstream per service."""

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from libs.devstack import ports
from libs.devstack.harness import until
from libs.devstack.nginx import SERVICES, Nginx

ROUTES = {
    "auth": [
        "/api/v1/auth/login",
        "/api/v1/users",
        "/api/v1/orgs/o1",
        "/api/v1/orgs/o1/policies-of-auth",
        "/api/v1/orgs/o1/areas",
        "/api/v1/teams",
        "/api/v1/groups/g1/members",
        "/api/v1/keys",
        "/api/v1/tokens",
        "/api/v1/admin/users",
        "/api/v1/admin/orgs/o1",
        "/oauth/token",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
    ],
    "registry": [
        "/api/v1/servers",
        "/api/v1/servers/github",
        "/api/v1/servers/github/tools",
        "/api/v1/servers/github/tools/test",
        "/api/v1/tools",
        "/api/v1/catalog/x",
        "/api/v1/mcps",
        "/api/v1/mcps/m1/versions",
        "/api/v1/policies",
        "/api/v1/ci/evaluate",
        "/api/v1/settings",
        "/api/v1/import",
        "/api/v1/export/claude",
        "/api/v1/webhooks/github",
        "/api/v1/admin/mcps",
        "/api/v1/admin/categories",
        "/api/v1/admin/tags",
        "/api/v1/sources/s1/discover",
        "/api/v1/orgs/o1/policies",
        "/api/v1/orgs/o1/policies/p1",
        "/api/v1/orgs/o1/reports",
        "/api/v1/orgs/o1/reports/r1.pdf",
        "/v0.1/servers",
        "/api/v1/config",
        "/api/v1/export/servers/s1",
        "/",
        "/edit/weather",
    ],
    "gateway": [
        "/api/v1/servers/github/test",
        "/api/v1/servers/github/call-tool",
        "/mcp",
        "/mcp/team-a",
        "/mcp/servers/github",
        "/sse",
        "/messages",
        "/.well-known/oauth-protected-resource",
    ],
    "sandbox": ["/api/v1/sandbox/processes", "/ws/terminal", "/api/v1/terminal/ws"],
    "audit": [
        "/api/v1/orgs/acme/audit-events",
        "/api/v1/admin/audit",
        "/api/v1/admin/audit/users/u1",
        "/api/v1/audit/events",
        "/api/v1/activity",
        "/api/v1/monitoring/status",
        "/api/v1/monitoring/logs",
        "/api/v1/health",
        "/api/v1/dashboard",
        "/api/v1/alerts",
        "/ws/events",
        "/ws/health_status",
    ],
}


def echo_app(service: str) -> web.Application:
    """An upstream answering every request with its service name, path and request id."""

    async def echo(request: web.Request) -> web.Response:
        body = {
            "service": service,
            "path": request.path,
            "request_id": request.headers.get("X-Request-Id"),
        }
        return web.json_response(body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def start_nginx(log_dir: Path, upstreams: dict[str, list[str]]) -> Nginx:
    """Start nginx on a free port with its own prefix and logs in log_dir."""
    nginx = Nginx(
        port=ports.free_port(),
        name=f"nginx-routes-{ports.free_port()}",
        upstreams=upstreams,
        log_dir=log_dir,
    )
    nginx.start()
    return nginx


def stop_nginx(nginx: Nginx) -> None:
    """Stop nginx and remove its prefix directory."""
    nginx.stop()
    if nginx.prefix is not None:
        shutil.rmtree(nginx.prefix, ignore_errors=True)


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory for nginx's log in these tests."""
    yield tmp_path_factory.mktemp("nginx-routes")


@pytest.fixture(scope="module")
async def edge(log_dir: Path) -> AsyncIterator[str]:
    """Real nginx on the rendered template with an echo server as each service's upstream."""
    runners = []
    upstreams: dict[str, list[str]] = {}
    for service in SERVICES:
        runner = web.AppRunner(echo_app(service))
        await runner.setup()
        port = ports.free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        upstreams[service] = [f"127.0.0.1:{port}"]
    nginx = start_nginx(log_dir, upstreams)
    try:
        yield nginx.url
    finally:
        stop_nginx(nginx)
        for runner in runners:
            await runner.cleanup()


@pytest.mark.parametrize(
    ("path", "service"), [(path, service) for service, paths in ROUTES.items() for path in paths]
)
async def test_each_prefix_reaches_its_service(edge: str, path: str, service: str) -> None:
    async with httpx.AsyncClient(base_url=edge) as client:
        resp = await client.get(path)
    assert resp.status_code == 200
    assert resp.json()["service"] == service
    assert resp.json()["path"] == path


@pytest.mark.parametrize("service", SERVICES)
async def test_healthz_of_a_service_reaches_its_healthz(edge: str, service: str) -> None:
    async with httpx.AsyncClient(base_url=edge) as client:
        resp = await client.get(f"/healthz/{service}")
    assert resp.json() == {
        "service": service,
        "path": "/healthz",
        "request_id": resp.headers["x-request-id"],
    }


async def test_a_request_without_id_gets_one_from_nginx(edge: str) -> None:
    async with httpx.AsyncClient(base_url=edge) as client:
        resp = await client.get("/api/v1/servers")
    assert len(resp.headers["x-request-id"]) == 32
    assert resp.json()["request_id"] == resp.headers["x-request-id"]


async def test_an_unrouted_api_path_answers_json_not_found(edge: str) -> None:
    async with httpx.AsyncClient(base_url=edge) as client:
        resp = await client.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"


async def test_a_service_without_replicas_answers_upstream_error(log_dir: Path) -> None:
    nginx = start_nginx(log_dir, upstreams={})
    try:
        async with httpx.AsyncClient(base_url=nginx.url) as client:
            resp = await client.get("/api/v1/sandbox/processes")
    finally:
        stop_nginx(nginx)
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "UPSTREAM_ERROR"


@pytest.mark.parametrize("path", ["/mcp", "/mcp/servers/x", "/sse", "/messages?session_id=x"])
async def test_an_mcp_endpoint_without_a_gateway_answers_a_json_rpc_error(
    log_dir: Path, path: str
) -> None:
    nginx = start_nginx(log_dir, upstreams={})
    try:
        async with httpx.AsyncClient(base_url=nginx.url) as client:
            resp = await client.post(path, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            big = await client.post(path, content=b"x" * (5 * 1024 * 1024))
    finally:
        stop_nginx(nginx)
    assert resp.status_code == 502
    assert resp.json()["jsonrpc"] == "2.0" and resp.json()["error"]["code"] == -32015
    assert big.status_code == 413 and big.json()["error"]["code"] == -32600


@pytest.mark.parametrize("path", ["/health", "/healthz"])
async def test_the_seeds_liveness_paths_answer_ok(edge: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=edge) as client:
        resp = await client.get(path)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/ready", "/readyz"])
async def test_the_seeds_readiness_paths_reach_the_registrys_readyz(edge: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=edge) as client:
        resp = await client.get(path)
    assert resp.status_code == 200
    assert resp.json()["service"] == "registry" and resp.json()["path"] == "/readyz"


async def test_readiness_without_a_registry_answers_upstream_error(log_dir: Path) -> None:
    nginx = start_nginx(log_dir, upstreams={})
    try:
        async with httpx.AsyncClient(base_url=nginx.url) as client:
            resp = await client.get("/ready")
    finally:
        stop_nginx(nginx)
    assert resp.status_code == 502
    assert resp.json()["error"]["code"] == "UPSTREAM_ERROR"


async def test_a_version_upload_may_exceed_the_body_cap_up_to_the_catalogs_limit(
    edge: str,
) -> None:
    six_mib = b"x" * (6 * 1024 * 1024)
    async with httpx.AsyncClient(base_url=edge, timeout=30) as client:
        upload = await client.post("/api/v1/mcps/m1/versions", content=six_mib)
        too_big = await client.post("/api/v1/mcps/m1/versions", content=b"x" * (21 * 1024 * 1024))
        elsewhere = await client.post("/api/v1/mcps", content=six_mib)
        deeper = await client.post("/api/v1/mcps/m1/versions/v1", content=six_mib)
    assert upload.status_code == 200 and upload.json()["service"] == "registry"
    assert upload.json()["path"] == "/api/v1/mcps/m1/versions"
    for resp in (too_big, elsewhere, deeper):
        assert resp.status_code == 413
        assert resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_a_websocket_token_in_the_query_is_not_written_to_the_access_log(
    edge: str, log_dir: Path
) -> None:
    secret = "sbk_" + "q7Zsecretvalue"
    async with httpx.AsyncClient(base_url=edge) as client:
        resp = await client.get(f"/api/v1/terminal/ws?cols=120&token={secret}&rows=30")
    assert resp.status_code == 200

    async def logged() -> bool:
        return (
            "/api/v1/terminal/ws?cols=120&token=REDACTED&rows=30"
            in (log_dir / "nginx.log").read_text()
        )

    await until(logged, timeout=10, what="nginx to flush its access log")
    assert secret not in (log_dir / "nginx.log").read_text()
