"""Test support: a database and NATS namespace per test package.

Running apps (`serving`, `settings_for`, `free_port`) lives in `libs.devstack.harness`,
which the benchmarks share; the names are re-exported here for the gateway and sandbox tests that
still import them from `tests.support`.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from libs.devstack import postgres
from libs.devstack.harness import free_port, serving, settings_for

__all__ = ["free_port", "package_isolation", "serving", "settings_for"]


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
