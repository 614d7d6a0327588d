"""Session fixtures for integration and e2e tests: real Postgres, NATS and a namespace.

- `pg_url`: URL of a fresh database `sbtest_<hex>` (dropped after the session). Apply your
  migrations once per session and clean your tables per test.
- `nats_url`: a reachable NATS server with JetStream.
- `namespace`: a random `t<hex>`; pass it as SWITCHBOARD_NAMESPACE (settings.namespace) so subjects
  and streams never collide with other runs. Streams named with it are deleted at the end.
The servers come from libs.devstack: DATABASE_URL / NATS_URL when set and reachable, else the
default local ports (Postgres only when it allows MIN_CONNECTIONS), else private servers under
.run/ (one per xdist worker).
"""

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
import uvloop

from libs.devstack import nats as devstack_nats
from libs.devstack import postgres

# each worker runs several services and an e2e stack at once: more than a stock server's 100
MIN_CONNECTIONS = 250


def worker_name() -> str:
    """Return the xdist worker id (gw0, gw1, ...) or `main` without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
async def pg_server() -> AsyncIterator[postgres.Postgres]:
    """Yield a reachable Postgres server (stopped at the end only if this session started it)."""
    server = await postgres.ensure_postgres(f"pg-test-{worker_name()}", MIN_CONNECTIONS)
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def pg_url(pg_server: postgres.Postgres) -> AsyncIterator[str]:
    """Yield the URL of a fresh database `sbtest_<hex>`, dropped after the session."""
    name = f"sbtest_{secrets.token_hex(4)}"
    url = await postgres.create_database(pg_server.url, name)
    yield url
    await postgres.drop_database(pg_server.url, name)


@pytest.fixture(scope="session")
def nats_url() -> Iterator[str]:
    """Yield the URL of a NATS server with JetStream (stopped at the end if we started it)."""
    server = devstack_nats.ensure_nats(f"nats-test-{worker_name()}")
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
async def namespace(nats_url: str) -> AsyncIterator[str]:
    """Yield a random SWITCHBOARD_NAMESPACE (`t<hex>`); delete its JetStream streams after."""
    value = f"t{secrets.token_hex(4)}"
    yield value
    await delete_streams(nats_url, value)


async def delete_streams(url: str, namespace: str) -> None:
    """Delete every JetStream stream whose name contains namespace."""
    client = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        jsm = client.jsm()
        for info in await jsm.streams_info():
            name = info.config.name or ""
            if namespace.lower() in name.lower():
                await jsm.delete_stream(name)
    finally:
        await client.close()


def pytest_configure(config: pytest.Config) -> None:
    """Every async test and fixture runs on uvloop, the loop the services run on (app.run).

    A global policy rather than pytest-asyncio's loop-factory hook: the hook parametrizes async
    tests only, and a sync test using an async fixture would then tear the session's loop down.
    """
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the `summary` lines tests recorded with record_property (the conformance counts).

    Also under xdist, which shows no output of passing tests."""
    lines = [
        str(value)
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == "summary"
    ]
    if lines:
        terminalreporter.write_sep("-", "summaries")
        for line in lines:
            terminalreporter.write_line(line)
