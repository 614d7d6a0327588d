"""The real auth service in this process, with settings cheap enough for tests and benchmarks."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from starlette.applications import Starlette

from libs.devstack.harness.serving import serving, settings_for
from services.auth.app import create_app
from services.auth.settings import AuthSettings

ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "Adm1n-Passw0rd!"
# argon2id with cheap parameters and no deliberate delays or rate limits, so tests stay fast
TEST_ENV: dict[str, Any] = {
    "AUTH_ARGON2_TIME_COST": 1,
    "AUTH_ARGON2_MEMORY_KIB": 1024,
    "AUTH_ARGON2_PARALLELISM": 1,
    "AUTH_FAILURE_DELAY_S": 0,
    "AUTH_ACCOUNT_DELAY_S": 0.2,
    "AUTH_MAX_SOURCE_FAILURES": 100000,
    "AUTH_OAUTH_REGISTRATIONS_PER_HOUR": 100000,
    "SWITCHBOARD_COOKIE_SECURE": "false",
    "AUTH_KEY_ENCRYPTION_SECRET": "test-key-encryption-secret",
    "SWITCHBOARD_ADMIN_USER": ADMIN_USERNAME,
    "SWITCHBOARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
}


class AuthRefused(AssertionError):
    """The auth service refused a setup call the caller relied on."""


@dataclass
class RunningAuth:
    """An auth service serving in this process."""

    url: str
    app: Starlette
    settings: AuthSettings
    admin_api_token: str  # the platform admin token (sba_..., SWITCHBOARD_ADMIN_TOKEN)


@asynccontextmanager
async def running_auth(
    pg_url: str, nats_url: str, namespace: str, **env: Any
) -> AsyncIterator[RunningAuth]:
    """Start the real auth service in-process (lifespan included) and yield where it runs."""
    admin_api_token = env.pop("SWITCHBOARD_ADMIN_TOKEN", None) or "sba_" + secrets.token_urlsafe(32)
    settings = settings_for(
        AuthSettings,
        pg_url=pg_url,
        nats_url=nats_url,
        namespace=namespace,
        SWITCHBOARD_ADMIN_TOKEN=admin_api_token,
        **{**TEST_ENV, **env},
    )
    app = create_app(settings)
    async with serving(app) as url:
        yield RunningAuth(url, app, settings, admin_api_token)


async def admin_token(url: str) -> str:
    """Return a JWT of the platform admin user of the auth at `url`, set up on first use."""
    credentials = {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD}
    async with aiohttp.ClientSession(base_url=url) as http:
        async with http.post("/api/v1/auth/setup", json=credentials) as resp:
            if resp.status not in (201, 409):
                raise AuthRefused(f"setup → {resp.status}: {await resp.text()}")
        async with http.post("/api/v1/auth/login", json=credentials) as resp:
            if resp.status != 200:
                raise AuthRefused(f"login {ADMIN_USERNAME} → {resp.status}: {await resp.text()}")
            return (await resp.json())["access_token"]
