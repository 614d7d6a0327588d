"""Test support: run a service app on a real port in-process, and build its settings."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
import uvicorn
from starlette.types import ASGIApp

from libs.common.http_protocol import CoalescingHttpToolsProtocol
from libs.common.settings import Settings
from libs.devstack import postgres

S = TypeVar("S", bound=Settings)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_for(cls: type[S], *, pg_url: str, nats_url: str, namespace: str, **env: Any) -> S:
    """Settings of a service pointed at the test database and NATS namespace."""
    environ = {
        "DATABASE_URL": pg_url,
        "NATS_URL": nats_url,
        "SWITCHBOARD_NAMESPACE": namespace,
        "SWITCHBOARD_HEARTBEAT_S": "1",
        "LOG_LEVEL": "warning",
        # many apps share one test Postgres; small pools keep under max_connections
        "SWITCHBOARD_DB_POOL_MAX": "4",
        # tests speak plain http: browser cookies are the plain-named, non-Secure ones
        "SWITCHBOARD_COOKIE_SECURE": "false",
        # in-process gateways share the test runner's heap: settling it (a full collection per
        # registry change) would only slow the suite; test_heap and the e2e processes cover it
        "GATEWAY_GC_FREEZE": "false",
    }
    environ.update({k: str(v) for k, v in env.items()})
    return cls.from_env(environ)


@asynccontextmanager
async def serving(app: ASGIApp, port: int | None = None) -> AsyncIterator[str]:
    """Run `app` under uvicorn (lifespan included) on 127.0.0.1 and yield its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=CoalescingHttpToolsProtocol,  # what libs.common.app.run serves with
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
        timeout_keep_alive=Settings.keepalive_s,  # as libs.common.app.run serves
        proxy_headers=False,  # likewise: the peer is the client, X-Forwarded-For is not read
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(30):
        while not server.started:
            if task.done():
                # uvicorn answers a failed lifespan with SystemExit, which would stop pytest
                try:
                    task.result()
                except BaseException as exc:
                    raise RuntimeError(f"the app failed to start: {exc!r}") from None
                raise RuntimeError("the app exited during startup")
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)


def package_isolation(label: str) -> tuple[Any, Any]:
    """`namespace` and `pg_url` fixtures for one test package (assign both in its conftest).

    The package gets a NATS namespace and a database of its own, so what its services register,
    publish or consume never reaches another package's tests.
    """

    @pytest.fixture(scope="package")
    def namespace(namespace: str) -> str:
        """The session's namespace, narrowed to this package."""
        return f"{namespace}{label}"

    @pytest.fixture(scope="package")
    async def pg_url(pg_server: postgres.Postgres) -> AsyncIterator[str]:
        """A fresh database `sbtest_<hex>_<label>`, dropped after the package."""
        name = f"sbtest_{secrets.token_hex(4)}_{label}"
        url = await postgres.create_database(pg_server.url, name)
        try:
            yield url
        finally:
            await postgres.drop_database(pg_server.url, name)

    return namespace, pg_url
