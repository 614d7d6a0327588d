"""Fixtures shared by the common library's integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from libs.common import bus as busmod
from libs.common.bus import Bus
from libs.devstack.harness import settings_for
from tests.integration.common.demo_app import DemoSettings


@pytest.fixture
async def bus(nats_url: str, namespace: str, pg_url: str) -> AsyncIterator[Bus]:
    """A Bus of the demo service in the test's namespace."""
    settings = settings_for(DemoSettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace)
    async with busmod.connect(settings) as b:
        yield b
