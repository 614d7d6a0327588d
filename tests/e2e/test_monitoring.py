"""Debian's prometheus scrapes the stack with deploy/monitoring's config; every query returns data.

The shipped prometheus.yml and alerts.rules.yml are used as they are except for what must differ
here: each job's targets become the stack's live replicas, the rule file is named by its absolute
path, and the scrape and evaluation intervals are 1 s (15 s as shipped) so the test waits seconds,
not minutes. Calls are driven first (tools/call that succeed, fail and are refused, a failed
sign-in, a process in the sandbox, an upstream whose transport fails until its breaker opens and
which is then deleted, a client session that ends)."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from libs.devstack import ports
from libs.devstack.harness import serving, until
from libs.devstack.services import SERVICES
from tests.e2e.conftest import SecuredStack
from tests.e2e.gateway_support import admin_token, bearer, call_tool, register, wait_listed
from tests.e2e.tenancy_world import ECHO_SERVER
from tests.support.promql import (
    MONITORING,
    RULES,
    alert_rules,
    as_query,
    is_external,
    panel_queries,
    selectors,
)
from tests.support.upstreams import LOCAL, handshake_era, make_upstream, read_body, replaying

PROMETHEUS = "/usr/bin/prometheus"
SCRAPE_S = "1s"
LOCAL_APP = {"transport_security": LOCAL}


def scrape_config(stack: SecuredStack) -> dict[str, Any]:
    """The shipped config with the stack's replicas as targets (and the test's intervals)."""
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=SCRAPE_S, evaluation_interval=SCRAPE_S)
    config["rule_files"] = [str(RULES)]
    for job in config["scrape_configs"]:
        service = job["job_name"].removeprefix("switchboard-")
        live = [r.address for r in stack.replicas_of(service) if r.alive()]
        assert live, f"no live replica of {service}"
        job["static_configs"] = [{"targets": live}]
    return config


@pytest.fixture(scope="module")
async def prometheus(e2e_stack: SecuredStack) -> AsyncIterator[httpx.AsyncClient]:
    """Prometheus scraping the stack; yields a client of its HTTP API."""
    with tempfile.TemporaryDirectory(prefix="sb-prometheus-") as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(yaml.safe_dump(scrape_config(e2e_stack)))
        port = ports.free_port()
        log = (e2e_stack.config.log_dir / "prometheus.log").open("wb")
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
                await until(lambda: ready(api), timeout=30, what="prometheus ready")
                yield api
        finally:
            process.terminate()
            process.wait(timeout=10)
            log.close()


async def ready(api: httpx.AsyncClient) -> bool:
    """True once Prometheus answers /-/ready."""
    return (await api.get("/-/ready")).status_code == 200


async def query(api: httpx.AsyncClient, promql: str) -> list[dict[str, Any]]:
    """The result of an instant query (an error names the query)."""
    resp = await api.get("/api/v1/query", params={"query": promql})
    assert resp.status_code == 200, f"{promql}: {resp.text}"
    return resp.json()["data"]["result"]


def flaky_upstream(name: str) -> MCPServer:
    """The weather upstream plus a tool that always fails (an isError result)."""
    server = make_upstream(name)

    @server.tool(description="Always fails.")
    def broken(city: str) -> str:
        raise ValueError(f"no station in {city}")

    return server


class FailingCalls:
    """An upstream app whose tools/call answer 502 (a transport failure) once `failing` is set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.failing = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, or refuse a tools/call while failing."""
        if scope["type"] != "http" or not self.failing:
            return await self.app(scope, receive, send)
        body = await read_body(receive)
        if b'"tools/call"' not in body:
            return await self.app(scope, replaying(body, receive), send)
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 502, "headers": headers})
        await send({"type": "http.response.body", "body": b"upstream down"})


async def drive_calls(stack: SecuredStack) -> None:
    """Calls that make each metric the dashboards and alerts read appear."""
    async with httpx.AsyncClient(base_url=stack.url, timeout=15) as api:
        resp = await api.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "not-the-password"}
        )
        assert resp.status_code == 401, resp.text
        token = await admin_token(api)
        name = f"mon{secrets.token_hex(3)}"
        # a handshake-era upstream: the gateway keeps a session with it (upstream sessions)
        app = FailingCalls(handshake_era(flaky_upstream(name).streamable_http_app(**LOCAL_APP)))
        async with serving(app) as base:
            url = base + "/mcp"
            await register(api, token, name, url)
            await wait_listed(api, "", token, f"{name}__temperature")
            ok = await call_tool(api, "", token, f"{name}__temperature", {"city": "x"})
            assert ok.status_code == 200 and "error" not in ok.json(), ok.text
            failed = await call_tool(api, "", token, f"{name}__broken", {"city": "x"})
            assert failed.json()["result"]["isError"] is True, failed.text
            refused = await call_tool(api, "", token, f"{name}__nothing", {"city": "x"})
            assert "error" in refused.json(), refused.text
            # its tools/call now fail as a transport would, until the breaker opens (its health
            # checks still pass, so the route stays)
            app.failing = True
            for _ in range(8):
                await call_tool(api, "", token, f"{name}__temperature", {"city": "x"})
            # deleted: the gateway ends its session with the upstream (upstream session durations)
            gone = await api.delete(f"/api/v1/servers/{name}", headers=bearer(token))
            assert gone.status_code == 204, gone.text
        # a handshake-era client session that ends (client session durations)
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}},
        }
        opened = await api.post("/mcp", json=init, headers=bearer(token))
        session = {**bearer(token), "Mcp-Session-Id": opened.headers["mcp-session-id"]}
        ended = await api.delete("/mcp", headers=session)
        assert ended.status_code == 204, ended.text
        stdio = f"monstdio{secrets.token_hex(3)}"
        body = {"name": stdio, "transport": "stdio", "command": "python3", "args": [ECHO_SERVER]}
        resp = await api.post("/api/v1/servers", json=body, headers=bearer(token))
        assert resp.status_code == 201, resp.text
        await wait_listed(api, "", token, f"{stdio}__echo")
        echoed = await call_tool(api, "", token, f"{stdio}__echo", {"text": "hi"})
        assert echoed.status_code == 200 and "error" not in echoed.json(), echoed.text


async def missing(api: httpx.AsyncClient, queries: list[tuple[str, str]]) -> list[str]:
    """The (where, query) pairs whose query returns no series."""
    results = await asyncio.gather(*(query(api, promql) for _, promql in queries))
    return [
        f"{where}: {promql}"
        for (where, promql), result in zip(queries, results, strict=True)
        if not result
    ]


def every_query() -> list[tuple[str, str]]:
    """Each dashboard query, each selector in it, and each selector of each alert expression.

    Selectors of EXTERNAL_METRICS (tests/support/promql.py: metrics of add-ons outside the stack,
    each listed with its reason) are the only ones left out."""
    queries: list[tuple[str, str]] = []
    for board, title, expr in panel_queries():
        queries.append((f"{board} / {title}", as_query(expr)))
        queries += [(f"{board} / {title} (selector)", s) for s in selectors(expr)]
    for rule in alert_rules():
        own = [s for s in selectors(rule["expr"]) if not is_external(s)]
        queries += [(f"alert {rule['alert']} (selector)", s) for s in own]
    return queries


async def test_every_dashboard_query_and_alert_selector_returns_data(
    e2e_stack: SecuredStack, prometheus: httpx.AsyncClient
) -> None:
    await drive_calls(e2e_stack)
    queries = every_query()
    last: list[str] = []

    async def all_answered() -> bool:
        nonlocal last
        last = await missing(prometheus, queries)
        return not last

    try:
        await until(all_answered, timeout=60, interval=1, what="every query to return data")
    except TimeoutError:
        pytest.fail("queries without data:\n" + "\n".join(last))


async def test_prometheus_scrapes_every_service_and_loads_every_rule(
    e2e_stack: SecuredStack, prometheus: httpx.AsyncClient
) -> None:
    async def all_up() -> bool:
        up = await query(prometheus, 'up{job=~"switchboard-.+"} == 1')
        return {sample["metric"]["job"] for sample in up} == {f"switchboard-{s}" for s in SERVICES}

    await until(all_up, timeout=30, interval=0.5, what="every job up")
    resp = await prometheus.get("/api/v1/rules")
    groups = resp.json()["data"]["groups"]
    loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
    assert loaded == {rule["alert"]: "ok" for rule in alert_rules()}
