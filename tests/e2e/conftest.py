"""The whole stack behind real nginx, on free ports, an isolated database and namespace.

`e2e_stack` (session) yields a SecuredStack (a libs.devstack.stack.Stack):
- `.url`: nginx's base URL; `await .health()`, `await .service_status("registry")`
- `.kill("sandbox")`: SIGKILL its replicas; `await .restart("sandbox")`: one fresh routed replica
- `await .start_replica("registry")`: one more replica behind nginx
- `.spawn("registry", env={...})`: an unrouted replica with extra env (stop it yourself)
- `.nats_auth`, `.nats_monitor_url`, `.admin_database_url`: the stack's NATS users, its
  nats-server's monitoring URL and the database's admin URL
Services log to .run/logs/e2e-<namespace>/; heartbeats every second.

Like `make run`, each stack's services sign in with their own credentials: a private
nats-server of the stack's own with a user per service (libs/common/bus_access.py; its log is
nats.log beside the services' and must show no permission violation at teardown), and a
Postgres role per service owning only its schema (libs/devstack/pgroles.py). In-process
integration tests keep the shared, unauthenticated NATS and the admin role.
"""

import asyncio
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from libs.common.bus_access import SERVICES
from libs.devstack import devsecrets, natsauth, pgroles, ports, postgres, proc
from libs.devstack import nats as devstack_nats
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
    # the stdio servers of the tenancy matrix (tests/fixtures/sandbox) run in the sandbox
    "SANDBOX_RO_PATHS": str(Path(__file__).resolve().parents[1] / "fixtures" / "sandbox"),
}


def remove_old_logs(label: str = "e2e", max_age_s: float = 3600) -> None:
    """Delete `label` log directories of earlier runs older than max_age_s."""
    for path in (proc.run_dir() / "logs").glob(f"{label}-*"):
        if time.time() - path.stat().st_mtime > max_age_s:
            shutil.rmtree(path, ignore_errors=True)


class SecuredStack(Stack):
    """A stack whose services sign in to NATS and Postgres as themselves.

    Tests that need to look underneath get the NATS admin user and the database's admin URL."""

    def __init__(self, config: StackConfig, nats: devstack_nats.Nats, database_url: str) -> None:
        super().__init__(config)
        assert nats.auth is not None and nats.monitor_url is not None
        self.nats_auth = nats.auth
        self.nats_monitor_url = nats.monitor_url
        self.admin_database_url = database_url

    def nats_admin_env(self, service: str) -> dict[str, str]:
        """Variables that make one spawned replica sign in to NATS as the admin user."""
        assert self.nats_auth.admin is not None
        prefix = service.upper()
        return {
            f"{prefix}_NATS_USER": self.nats_auth.admin.name,
            f"{prefix}_NATS_PASSWORD": self.nats_auth.admin.password,
        }


@asynccontextmanager
async def running_stack(
    pg_server: postgres.Postgres,
    namespace: str,
    label: str = "e2e",
    env: dict[str, str] | None = None,
) -> AsyncIterator[SecuredStack]:
    """Boot the five services and nginx in a database, a namespace and a nats-server of their own.

    The namespace is `{namespace}{label}`; each service runs as its own Postgres role and NATS
    user, with `env` on top of STACK_ENV. Teardown stops everything started, database and roles
    included."""
    remove_old_logs(label)
    # a sandbox work root of the stack's own (not the checkout's .run/sandbox, which `make run`
    # uses), in the temp dir every sandbox uid can reach wherever the checkout lies
    work_root = Path(tempfile.mkdtemp(prefix=f"sb{label}-sandbox-"))
    work_root.chmod(0o711)
    nats_store = Path(tempfile.mkdtemp(prefix=f"sb{label}-nats-"))
    await pgroles.drop_orphan_roles(pg_server.url, f"sb{label}_")  # of runs killed earlier
    database = f"sb{label}_{secrets.token_hex(4)}"
    url = await postgres.create_database(pg_server.url, database)
    roles = await pgroles.ensure_roles(url, pgroles.new_passwords())
    name = f"{label}-{namespace}"
    log_dir = proc.run_dir() / "logs" / name
    auth = natsauth.generate(f"{namespace}{label}", admin=True)
    bus = await asyncio.to_thread(
        devstack_nats.start_private_server,
        f"nats-{name}",
        auth=auth,
        store=nats_store / "store",
        log=log_dir / "nats.log",
        monitor=True,
    )
    stack = SecuredStack(
        StackConfig(
            database_url="",  # no service gets the admin's URL
            nats_url=bus.url,
            port=ports.free_port(),
            namespace=f"{namespace}{label}",
            name=name,
            log_dir=log_dir,
            env={
                **STACK_ENV,
                **devsecrets.load(),
                "SANDBOX_WORK_ROOT": str(work_root),
                **(env or {}),
            },
            service_env={s: {**roles.service_env(s), **auth.service_env(s)} for s in SERVICES},
        ),
        bus,
        url,
    )
    try:
        await stack.start(timeout=60)
        yield stack
    finally:
        stack.stop()
        bus.stop()
        shutil.rmtree(work_root, ignore_errors=True)
        shutil.rmtree(nats_store, ignore_errors=True)
        if stack.nginx.prefix is not None:
            shutil.rmtree(stack.nginx.prefix, ignore_errors=True)
        await postgres.drop_database(pg_server.url, database)
        await pgroles.drop_roles(pg_server.url, database)
    # every subject a service used while the tests ran was within its permissions
    refused = devstack_nats.permission_violations(log_dir / "nats.log")
    assert not refused, "nats-server refused a service a subject:\n" + "\n".join(refused[:20])


@pytest.fixture(scope="session")
async def e2e_stack(pg_server: postgres.Postgres, namespace: str) -> AsyncIterator[SecuredStack]:
    """Boot the five services and nginx; tear down everything started, database included."""
    async with running_stack(pg_server, namespace) as stack:
        yield stack
