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
from tests.support.catalog_rows import clear_catalog, insert_mcp, insert_snapshot


@pytest.fixture(autouse=True)
async def no_catalog(reg: Registry) -> AsyncIterator[None]:
    """Every test starts without catalog entries."""
    async with reg.pool.acquire() as conn:
        await clear_catalog(conn)
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
