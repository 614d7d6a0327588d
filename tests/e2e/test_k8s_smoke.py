"""The dev overlay's manifests run as local processes: a wrong variable or port fails here.

From the rendered overlays/dev: nats-server runs the ConfigMap's configuration (the services'
users and permissions) with the StatefulSet's environment; the db-setup Job's command makes the
roles; each service runs with its Deployment's environment (the dev Secrets filled in) behind
nginx. Only what cannot be the same on this machine is changed: the Services' host names
become local addresses (`postgres`, `nats`), the database and its roles get a test name, each
process its own free port, the sandbox a temp work root and the public URL the local nginx;
the registry and the gateway may reach the
loopback upstream. Every readiness probe must pass and a tool call
must go through the gateway.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx
import pytest

from libs.common.bus_access import SERVICES
from libs.devstack import nats, pgroles, ports, postgres, proc
from libs.devstack.stack import Stack, StackConfig
from tests.e2e.gateway_support import bearer, call_tool, register, wait_listed
from tests.integration.gateway.conftest import calculator
from tests.support.k8s_manifests import named, objects, resolve_env, service_container
from tests.support.upstreams import run_upstream

OVERLAY = "overlays/dev"


def local_database_url(url: str, server: str, database: str) -> str:
    """A manifest's database URL on the local server, its role renamed for the test database."""
    parts, local = urlsplit(url), urlsplit(server)
    assert parts.hostname == "postgres" and parts.path == "/switchboard", url
    user = unquote(parts.username or "").replace("switchboard_", f"{database}_", 1)
    netloc = f"{quote(user, safe='')}:{quote(unquote(parts.password or ''), safe='')}"
    return urlunsplit(parts._replace(netloc=f"{netloc}@{local.netloc.split('@')[-1]}",
                                     path=f"/{database}"))  # fmt: skip


def start_nats(directory: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """nats-server on the rendered nats-config with the StatefulSet's environment."""
    config = named(OVERLAY, "ConfigMap", "nats-config")["data"]
    port, monitor = ports.free_port(), ports.free_port()
    for name, text in config.items():
        text = text.replace("port: 4222", f"port: {port}").replace("http_port: 8222", "")
        text = text.replace("/data/jetstream", str(directory / "jetstream"))
        (directory / name).write_text(text.replace("pid_file: /tmp/", f"pid_file: {directory}/"))
    pod = objects(OVERLAY, "StatefulSet")["nats"]["spec"]["template"]["spec"]
    env = {"PATH": os.environ.get("PATH", ""), **resolve_env(OVERLAY, pod["containers"][0], "x")}
    env["POD_NAME"] = "nats-0"
    binary = nats.find_binary()
    assert binary is not None
    argv = [str(binary), "-c", str(directory / "nats.conf"), "-m", str(monitor)]
    server = proc.spawn(argv, log, env=env)
    if not ports.wait_listening("127.0.0.1", port, timeout=10):
        proc.stop_group(server)
        raise AssertionError(f"nats-server did not start:\n{proc.tail(log)}")
    return server, port


@pytest.fixture(scope="module")
async def k8s_stack(pg_server: postgres.Postgres) -> AsyncIterator[Stack]:
    """The dev overlay's processes on a test database and a nats-server of their own."""
    database = f"sbk8s_{secrets.token_hex(4)}"
    admin_url = await postgres.create_database(pg_server.url, database)
    work = Path(tempfile.mkdtemp(prefix="sbk8s-"))
    work.chmod(0o711)
    log_dir = proc.run_dir() / "logs" / f"k8s-{database}"
    bus, nats_port = start_nats(work, log_dir / "nats.log")
    port = ports.free_port()
    public = f"http://127.0.0.1:{port}"
    try:
        job = objects(OVERLAY, "Job")["db-setup"]["spec"]["template"]["spec"]["containers"][0]
        job_env = {
            k: local_database_url(v, admin_url, database)
            for k, v in resolve_env(OVERLAY, job, "db-setup").items()
        }
        job_env["DATABASE_URL"] = admin_url  # the admin of the test database
        assert job["command"][:1] == ["python"]
        done = subprocess.run(
            [sys.executable, *job["command"][1:]],
            env={"PATH": os.environ.get("PATH", ""), **job_env},
            cwd=proc.ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        service_env = {}
        for service in SERVICES:
            container = service_container(OVERLAY, service)
            assert container["command"] == ["python", "-m", f"services.{service}"]
            env = resolve_env(OVERLAY, container, f"{service}-0")
            key = f"{service.upper()}_DATABASE_URL"
            env[key] = local_database_url(env[key], admin_url, database)
            assert env["NATS_URL"] == "nats://nats:4222"
            env["NATS_URL"] = f"nats://127.0.0.1:{nats_port}"
            env["SWITCHBOARD_PUBLIC_URL"] = public
            service_env[service] = env
        service_env["sandbox"]["SANDBOX_WORK_ROOT"] = str(work / "sandbox")
        service_env["registry"]["REGISTRY_SSRF_ALLOWLIST"] = "127.0.0.0/8"
        service_env["gateway"]["GATEWAY_SSRF_ALLOWLIST"] = "127.0.0.0/8"
        stack = Stack(
            StackConfig(
                database_url="",
                nats_url=f"nats://127.0.0.1:{nats_port}",
                port=port,
                name=f"k8s-{database}",
                log_dir=log_dir,
                env={"SWITCHBOARD_DRAIN_S": "1"},
                service_env=service_env,
            )
        )
        try:
            await stack.start(timeout=60)
            yield stack
        finally:
            stack.stop()
            if stack.nginx.prefix is not None:
                shutil.rmtree(stack.nginx.prefix, ignore_errors=True)
    finally:
        proc.stop_group(bus)
        shutil.rmtree(work, ignore_errors=True)
        await postgres.drop_database(pg_server.url, database)
        await pgroles.drop_roles(pg_server.url, database)
    refused = nats.permission_violations(log_dir / "nats.log")
    assert not refused, "nats-server refused a service a subject:\n" + "\n".join(refused[:20])


async def test_every_readiness_probe_passes(k8s_stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        for replica in k8s_stack.replicas:
            container = service_container(OVERLAY, replica.service)
            for probe in ("livenessProbe", "readinessProbe"):
                path = container[probe]["httpGet"]["path"]
                resp = await http.get(f"{replica.url}{path}")
                assert resp.status_code == 200, (replica.service, path, resp.text)


async def test_a_tool_call_goes_through_the_gateway(k8s_stack: Stack) -> None:
    auth_env = resolve_env(OVERLAY, service_container(OVERLAY, "auth"), "auth-0")
    login = {
        "username": auth_env["SWITCHBOARD_ADMIN_USER"],
        "password": auth_env["SWITCHBOARD_ADMIN_PASSWORD"],
    }
    async with (
        run_upstream(calculator()) as url,
        httpx.AsyncClient(base_url=k8s_stack.url, timeout=10) as api,
    ):
        resp = await api.post("/api/v1/auth/login", json=login)
        assert resp.status_code == 200, resp.text
        token = resp.json()["access_token"]
        resp = await api.post("/api/v1/keys", json={"name": "k8s"}, headers=bearer(token))
        assert resp.status_code == 201, resp.text
        key = resp.json()["key"]
        await register(api, token, "calc", url)
        await wait_listed(api, "", key, "calc__echo")
        resp = await call_tool(api, "", key, "calc__echo", {"text": "from the manifests"})
        assert resp.status_code == 200, resp.text
        assert "from the manifests" in resp.text
