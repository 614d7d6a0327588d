"""Run a service app under uvicorn in this process, and build its settings for a test run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp

from libs.common.http_protocol import CoalescingHttpToolsProtocol
from libs.common.settings import Settings
from libs.devstack.harness.polling import until
from libs.devstack.ports import free_port

S = TypeVar("S", bound=Settings)


def settings_for(cls: type[S], *, pg_url: str, nats_url: str, namespace: str, **env: Any) -> S:
    """Return settings of a service pointed at the given database and NATS namespace."""
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

    async def serve() -> None:
        # uvicorn answers a failed lifespan with SystemExit, which a task re-raises out of the
        # event loop (stopping pytest or the benchmark): make it an ordinary error
        try:
            await server.serve()
        except SystemExit as exc:
            raise RuntimeError(f"uvicorn exited with status {exc.code}") from None

    task = asyncio.create_task(serve())

    def started() -> bool:
        if task.done():
            try:
                task.result()
            except Exception as exc:
                raise RuntimeError(f"the app failed to start: {exc!r}") from None
            raise RuntimeError("the app exited during startup")
        return server.started

    await until(started, timeout=30, interval=0.02, what="the app to start", retry_on=())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
