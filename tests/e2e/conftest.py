"""The whole stack behind real nginx, on free ports, an isolated database and namespace.

`e2e_stack` (session) yields a libs.devstack.stack.Stack:
- `.url`: nginx's base URL; `await .health()`, `await .service_status("registry")`
- `.kill("sandbox")`: SIGKILL its replicas; `await .restart("sandbox")`: one fresh routed replica
- `await .start_replica("registry")`: one more replica behind nginx
- `.spawn("registry", env={...})`: an unrouted replica with extra env (stop it yourself)
Services log to .run/logs/e2e-<namespace>/; heartbeats every second.
"""

import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from libs.devstack import devsecrets, ports, postgres, proc
from libs.devstack.stack import Stack, StackConfig
from tests.support.auth import ADMIN_PASSWORD

STACK_ENV = {
    "SWITCHBOARD_HEARTBEAT_S": "1",
    "SWITCHBOARD_DRAIN_S": "1",
    "SWITCHBOARD_DB_POOL_MAX": "4",
    "SWITCHBOARD_ADMIN_USER": "admin",
    # the credentials tests/support/auth.AuthClient signs in with
    "SWITCHBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
    # upstream MCP servers of the gateway tests run in the test process on 127.0.0.1
    "REGISTRY_SSRF_ALLOWLIST": "127.0.0.0/8",
}


def remove_old_logs(label: str = "e2e", max_age_s: float = 3600) -> None:
    """Delete `label` log directories of earlier runs older than max_age_s."""
    for path in (proc.run_dir() / "logs").glob(f"{label}-*"):
        if time.time() - path.stat().st_mtime > max_age_s:
            shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def running_stack(
    pg_server: postgres.Postgres,
    nats_url: str,
    namespace: str,
    label: str = "e2e",
    env: dict[str, str] | None = None,
) -> AsyncIterator[Stack]:
    """Boot the five services and nginx in a database and a namespace (`{namespace}{label}`) of
    their own, with `env` on top of STACK_ENV; tear down everything started, database included."""
    remove_old_logs(label)
    # a sandbox work root of the stack's own (not the checkout's .run/sandbox, which `make run`
    # uses), in the temp dir every sandbox uid can reach wherever the checkout lies
    work_root = Path(tempfile.mkdtemp(prefix=f"sb{label}-sandbox-"))
    work_root.chmod(0o711)
    database = f"sb{label}_{secrets.token_hex(4)}"
    url = await postgres.create_database(pg_server.url, database)
    name = f"{label}-{namespace}"
    stack = Stack(
        StackConfig(
            database_url=url,
            nats_url=nats_url,
            port=ports.free_port(),
            namespace=f"{namespace}{label}",
            name=name,
            log_dir=proc.run_dir() / "logs" / name,
            env={
                **STACK_ENV,
                **devsecrets.load(),
                "SANDBOX_WORK_ROOT": str(work_root),
                **(env or {}),
            },
        )
    )
    try:
        await stack.start(timeout=60)
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(work_root, ignore_errors=True)
        if stack.nginx.prefix is not None:
            shutil.rmtree(stack.nginx.prefix, ignore_errors=True)
        await postgres.drop_database(pg_server.url, database)


@pytest.fixture(scope="session")
async def e2e_stack(
    pg_server: postgres.Postgres, nats_url: str, namespace: str
) -> AsyncIterator[Stack]:
    """Boot the five services and nginx; tear down everything started, database included."""
    async with running_stack(pg_server, nats_url, namespace) as stack:
        yield stack
