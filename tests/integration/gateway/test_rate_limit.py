"""Per-identity rate limits shared by two gateway replicas through NATS KV."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from libs.common.authn import Principal
from services.gateway.app import create_app
from services.gateway.rate_limit import RateLimiter
from services.gateway.settings import GatewaySettings
from tests.integration.gateway.conftest import bearer, modern_body, modern_headers
from tests.support import serving, settings_for


@asynccontextmanager
async def replicas(pg_url: str, nats_url: str, namespace: str, **env) -> AsyncIterator[list]:
    """Two gateway apps (two replicas) on their own ports, sharing NATS."""
    settings = settings_for(
        GatewaySettings, pg_url=pg_url, nats_url=nats_url, namespace=namespace, **env
    )
    async with serving(create_app(settings)) as a, serving(create_app(settings)) as b:
        yield [a, b]


async def list_tools(http: httpx.AsyncClient, url: str, key: str) -> httpx.Response:
    """One stateless tools/list."""
    return await http.post(
        f"{url}/mcp",
        json=modern_body("tools/list", {}),
        headers={**modern_headers("tools/list"), **bearer(key)},
    )


async def test_two_replicas_share_one_limit_with_headers_and_429(
    stack, pg_url, nats_url, namespace
) -> None:
    async with (
        replicas(pg_url, nats_url, namespace, GATEWAY_RATE_LIMIT_PER_MIN=5) as urls,
        httpx.AsyncClient() as http,
    ):
        for _ in range(2):  # a second try only if the run straddled a minute boundary
            user = await stack.auth.create_user()
            key = await stack.auth.api_key(user.token)
            window = int(time.time() // 60)
            answers = [await list_tools(http, urls[i % 2], key) for i in range(8)]
            if int(time.time() // 60) == window:
                break
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert len(ok) == 5 and len(refused) == 3
    assert {r.request.url.port for r in ok} == {int(u.rsplit(":", 1)[1]) for u in urls}
    assert [int(r.headers["X-RateLimit-Remaining"]) for r in ok] == [4, 3, 2, 1, 0]
    for r in answers:
        assert r.headers["X-RateLimit-Limit"] == "5"
        assert 0 <= int(r.headers["X-RateLimit-Reset"]) <= 60
    for r in refused:
        assert r.json()["error"]["code"] == -32029
        assert 0 < int(r.headers["Retry-After"]) <= 60
    other = await stack.auth.create_user()
    async with replicas(pg_url, nats_url, namespace, GATEWAY_RATE_LIMIT_PER_MIN=0) as urls:
        async with httpx.AsyncClient() as http:
            free = await list_tools(http, urls[0], await stack.auth.api_key(other.token))
    assert free.status_code == 200 and "X-RateLimit-Limit" not in free.headers


async def test_leases_keep_kv_off_the_hot_path_and_never_overshoot(registry) -> None:
    for _ in range(2):  # a second try only if the run straddled a minute boundary
        window = int(time.time() // 60)
        a = RateLimiter(registry.bus, per_min=1000, overrides={"vip": 3})
        b = RateLimiter(registry.bus, per_min=1000, overrides={"vip": 3})
        await a.start()
        await b.start()
        user = Principal(kind="user", id=f"u-{time.time_ns()}", name="u")
        for _ in range(100):
            assert (await a.check(user)).allowed
        hot_path_kv = a.kv_requests
        vip = Principal(kind="api_key", id=f"v-{time.time_ns()}", name="v", credential_id="vip")
        verdicts = [await (a if i % 2 else b).check(vip) for i in range(6)]
        if int(time.time() // 60) == window:
            break
    assert hot_path_kv == 2  # two leases of 50 for 100 requests
    assert [v.allowed for v in verdicts].count(True) == 3
    assert [v.limit for v in verdicts] == [3] * 6
