"""Auth's credential-expiry and signing-key figures, read from its tables at scrape time."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.auth.metrics import read_credentials
from tests.support.auth import AuthClient
from tests.support.metrics import scrape, value

EXPIRING = "switchboard_auth_credentials_expiring"
NEXT = "switchboard_auth_credential_next_expiry_seconds"
AGE = "switchboard_auth_signing_key_age_seconds"
PERIOD = "switchboard_auth_signing_key_rotation_period_seconds"
DAY = 86400.0


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on the package's database (auth's tables)."""
    async with asyncpg.create_pool(pg_url, min_size=1, max_size=2) as pool:
        yield pool


def figure(samples: dict, family: str, *labels: str) -> float:
    """One sample a reading returned."""
    return dict(samples[family])[labels]


async def test_live_credentials_expiring_within_seven_days_are_counted_by_kind(
    auth: AuthClient, pool: asyncpg.Pool
) -> None:
    before = await read_credentials(pool, 90)
    user = await auth.create_user()
    for days in (3, 30):
        expires = (datetime.now(UTC) + timedelta(days=days)).isoformat()
        body = {"name": f"exp{days}", "expires_at": expires}
        await auth.call("POST", "/api/v1/keys", user.token, json=body, expect=201)
    org = await auth.create_org()
    await auth.service_token(org["slug"], ["read:org:*"], expires_in_days=2)
    await auth.service_token(org["slug"], ["read:org:*"], expires_in_days=60)
    await auth.service_token(org["slug"], ["read:org:*"])  # never expires
    after = await read_credentials(pool, 90)
    for kind in ("api_key", "service_token"):
        assert figure(after, EXPIRING, kind) - figure(before, EXPIRING, kind) == 1, kind
    assert figure(after, NEXT, "service_token") <= 2 * DAY
    assert figure(after, NEXT, "api_key") <= 3 * DAY


async def test_a_revoked_key_no_longer_counts_as_expiring(
    auth: AuthClient, pool: asyncpg.Pool
) -> None:
    user = await auth.create_user()
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    body = {"name": "soon", "expires_at": expires}
    key = await auth.call("POST", "/api/v1/keys", user.token, json=body, expect=201)
    counted = figure(await read_credentials(pool, 90), EXPIRING, "api_key")
    await auth.call("DELETE", f"/api/v1/keys/{key['id']}", user.token, expect=204)
    assert figure(await read_credentials(pool, 90), EXPIRING, "api_key") == counted - 1


async def test_metrics_export_the_figures_without_org_labels(auth: AuthClient) -> None:
    samples = await scrape(auth.http)
    expiring = [labels for name, labels in samples if name == EXPIRING]
    assert sorted(dict(labels)["kind"] for labels in expiring) == ["api_key", "service_token"]
    assert all(set(dict(labels)) == {"kind"} for labels in expiring)
    assert value(samples, PERIOD) == 90 * DAY
    assert 0 <= value(samples, AGE) < 3650 * DAY
    assert not math.isnan(value(samples, NEXT, kind="api_key"))


async def test_an_overdue_signing_key_shows_its_age_until_it_is_rotated(
    auth: AuthClient, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE auth.signing_keys SET created_at = now() - interval '100 days'"
            " WHERE retired_at IS NULL"
        )
    overdue = await read_credentials(pool, 90)
    assert figure(overdue, AGE) > figure(overdue, PERIOD)
    await auth.call("POST", "/api/v1/auth/signing-keys/rotate", expect=201)
    rotated = await read_credentials(pool, 90)
    assert figure(rotated, AGE) < 60
