"""The registry's plan limits: private MCPs and scans per month, from the org's plan in auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from libs.common import plans as plan_limits
from libs.common.errors import NotFound, PlanLimit
from libs.devstack.harness import until
from services.registry import plans
from services.registry.context import Registry
from tests.integration.registry.test_catalog_api import tarball
from tests.support.catalog import empty_catalog, insert_mcp, insert_snapshot


@pytest.fixture(autouse=True)
async def no_catalog(reg: Registry) -> AsyncIterator[None]:
    """Every test starts without catalog entries."""
    await empty_catalog(reg.pool)
    yield


async def refusal(reg: Registry, org: str, resource: str) -> PlanLimit | None:
    """The PlanLimit require_capacity raises now, or None when there is room."""
    async with reg.pool.acquire() as conn:
        try:
            await plans.require_capacity(reg, conn, org, resource)  # type: ignore[arg-type]
        except PlanLimit as exc:
            return exc
    return None


async def test_a_free_org_has_room_for_one_private_mcp_and_a_bigger_plan_for_more(
    auth: Any, reg: Registry
) -> None:
    org = await auth.create_org()
    free = plan_limits.PLANS["free"].max_private_mcps
    assert await refusal(reg, org["id"], "mcps") is None
    async with reg.pool.acquire() as conn:
        for i in range(free or 0):
            await insert_mcp(conn, f"private-{i}", org["id"])
        await insert_mcp(conn, "public-one", org["id"], "public")  # public entries are free
        await insert_mcp(conn, "someone-elses", (await auth.create_org())["id"])
    refused = await refusal(reg, org["id"], "mcps")
    assert refused is not None and refused.status == 402 and refused.code == "PLAN_LIMIT"
    assert refused.details == {
        "limit": free, "used": free, "plan": "free", "resource": "max_private_mcps"
    }  # fmt: skip
    # the new plan reaches the registry by auth's org.updated event, not after the cache's TTL
    await auth.call("PATCH", f"/api/v1/admin/orgs/{org['id']}/plan", json={"plan": "pro"})

    async def room() -> bool:
        return await refusal(reg, org["id"], "mcps") is None

    await until(room, timeout=5, what="the pro plan's room", retry_on=())


async def test_scans_this_month_count_against_the_plan_with_the_admins_overrides(
    auth: Any, reg: Registry, api: httpx.AsyncClient
) -> None:
    org = await auth.create_org()
    resp = await api.put(
        "/api/v1/settings/plan_limits", json={"value": {"free": {"scans_per_month": 2}}}
    )
    assert resp.status_code == 200, resp.text
    async with reg.pool.acquire() as conn:
        mcp = await insert_mcp(conn, "scanned", org["id"])
        last_month = datetime.now(UTC).replace(day=1) - timedelta(days=2)
        await insert_snapshot(conn, mcp, "v-old", created_at=last_month)
        await insert_snapshot(conn, mcp, "v1")
    assert await refusal(reg, org["id"], "scans") is None
    async with reg.pool.acquire() as conn:
        await insert_snapshot(conn, mcp, "v2")
    refused = await refusal(reg, org["id"], "scans")
    assert refused is not None and refused.details["limit"] == 2 and refused.details["used"] == 2


async def test_bad_plan_limit_overrides_are_refused_and_an_unknown_org_is_not_found(
    api: httpx.AsyncClient, reg: Registry
) -> None:
    for value in ({"free": {"seats": -1}}, {"free": {"bogus": 1}}, ["free"], {"pro": 3}):
        resp = await api.put("/api/v1/settings/plan_limits", json={"value": value})
        assert resp.status_code == 422, (value, resp.text)
    assert (await api.get("/api/v1/settings")).json()["settings"]["plan_limits"] is None
    with pytest.raises(NotFound):
        await refusal(reg, "00000000-0000-0000-0000-000000000000", "mcps")


async def test_the_catalog_api_refuses_a_private_mcp_or_a_scan_beyond_the_plan(
    auth: Any, reg: Registry, api: httpx.AsyncClient
) -> None:
    org = await auth.create_org()
    resp = await api.put(
        "/api/v1/settings/plan_limits",
        json={"value": {"free": {"max_private_mcps": 1, "scans_per_month": 1}}},
    )
    assert resp.status_code == 200, resp.text
    first = await api.post("/api/v1/mcps", json={"name": "first", "org": org["id"]})
    assert first.status_code == 201, first.text
    second = await api.post("/api/v1/mcps", json={"name": "second", "org": org["id"]})
    assert (second.status_code, second.json()["error"]["code"]) == (402, "PLAN_LIMIT")
    public = {"name": "shown", "org": org["id"], "visibility": "public"}
    assert (await api.post("/api/v1/mcps", json=public)).status_code == 201

    upload = tarball({"README.md": b"# first\n"})
    headers = {"Content-Type": "application/gzip"}
    path = f"/api/v1/mcps/{first.json()['id']}/versions"
    assert (await api.post(path, content=upload, headers=headers)).status_code == 201
    async with reg.pool.acquire() as conn:
        mcp = await conn.fetchval("SELECT id FROM registry.mcps WHERE name = 'first'")
        await insert_snapshot(conn, mcp, "scanned-once")
    again = await api.post(path + "?version=v2", content=upload, headers=headers)
    assert (again.status_code, again.json()["error"]["code"]) == (402, "PLAN_LIMIT")
    async with reg.pool.acquire() as conn:
        names = await conn.fetch("SELECT name FROM registry.mcps WHERE org = $1", org["id"])
        versions = await conn.fetchval(
            "SELECT count(*) FROM registry.mcp_versions WHERE visible_version = 'v2'"
        )
    assert sorted(r["name"] for r in names) == ["first", "shown"] and versions == 0
