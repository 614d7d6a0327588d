"""The conformance tests' stack: the five services behind nginx, in a database of its own.

It is booted as the e2e tests boot it, but in a database and a NATS namespace of its own, so
that it never shares events, consumers or registered servers with an e2e stack on the same
pytest worker."""

from collections.abc import AsyncIterator

import pytest

from libs.devstack import postgres
from libs.devstack.stack import Stack
from tests.e2e.conftest import running_stack


@pytest.fixture(scope="session")
async def conformance_stack(pg_server: postgres.Postgres, namespace: str) -> AsyncIterator[Stack]:
    """Boot the stack once per session; tear down everything started."""
    async with running_stack(pg_server, namespace, label="conf") as stack:
        yield stack
