"""The registry's settings for tests and benchmarks, and its shared parts on a pool and bus."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from libs.common import bus as busmod
from libs.common import db
from libs.devstack.harness.serving import settings_for
from services.registry.context import Registry
from services.registry.crypto import SecretBox
from services.registry.settings import RegistrySettings

# one key per process: every registry started here can read what another one sealed
MASTER_KEY = base64.b64encode(os.urandom(32)).decode()


def registry_settings(pg_url: str, nats_url: str, namespace: str, **env: Any) -> RegistrySettings:
    """Return test registry settings: 127.0.0.0/8 allowed, no health loop unless asked."""
    base = {
        "REGISTRY_MASTER_KEY": MASTER_KEY,
        "REGISTRY_SSRF_ALLOWLIST": "127.0.0.0/8",
        "REGISTRY_HEALTH_ENABLED": "false",
        "REGISTRY_DISCOVERY_TIMEOUT_S": "5",
        "REGISTRY_SANDBOX_TIMEOUT_S": "0.5",
    }
    base.update(env)
    return settings_for(
        RegistrySettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace, **base
    )


@asynccontextmanager
async def registry_parts(settings: RegistrySettings, bus_name: str) -> AsyncIterator[Registry]:
    """Yield the registry's shared parts on a pool and bus of our own, to call its logic."""
    async with (
        db.open_pool(settings) as pool,
        busmod.connect(settings, name=bus_name) as bus,
    ):
        yield Registry(
            pool=pool, bus=bus, settings=settings, box=SecretBox.from_base64(MASTER_KEY, "k1")
        )
