"""The auth service, started once per session for the auth tests."""

from collections.abc import AsyncIterator

import pytest

from tests.support.auth import AuthClient, auth_service


@pytest.fixture(scope="session")
async def auth(pg_url: str, nats_url: str, namespace: str) -> AsyncIterator[AuthClient]:
    """The running auth service and an admin-capable client."""
    async with auth_service(pg_url, nats_url, namespace) as client:
        yield client
