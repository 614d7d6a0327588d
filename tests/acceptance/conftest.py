"""The acceptance suite's stack: booted once per pytest worker exactly as `make run` boots it.

- `platform` (session): tests.acceptance.platform_boot.Platform (`.url`, `.stack`, `.admin`,
  `.postgres.restart()`, `.nats.kill()/.start()`, `.root` the 0700 copy it runs from).
- `api`: an httpx client of nginx; `admin`: the platform admin's JWT and an API key.
- `weather`: a Python SDK upstream (tests/support/upstreams) registered through nginx.
Service logs: .run/logs/acceptance-<hex>/ of this checkout (named in failure messages).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.acceptance.platform_boot import Platform, booted
from tests.acceptance.rest import Admin, sign_in_admin
from tests.acceptance.wire import register_http, wait_routed
from tests.support.upstreams import make_upstream, run_upstream


@pytest.fixture(scope="session")
async def platform() -> AsyncIterator[Platform]:
    """The platform booted from a copy of the checkout in a 0700 directory."""
    async with booted() as started:
        yield started


@pytest.fixture(scope="session")
async def api(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of nginx."""
    async with httpx.AsyncClient(base_url=platform.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
async def admin(platform: Platform, api: httpx.AsyncClient) -> Admin:
    """The platform admin `make run` created: a JWT from signing in, and an API key."""
    return await sign_in_admin(api, platform.admin)


@pytest.fixture(scope="session")
async def weather(api: httpx.AsyncClient, admin: Admin) -> AsyncIterator[str]:
    """A Python SDK upstream (temperature, forecast) registered as `weather`; yields its name."""
    async with run_upstream(make_upstream("weather")) as url:
        await register_http(api, admin, "weather", url)
        await wait_routed(api, admin.key, "weather__temperature")
        yield "weather"
