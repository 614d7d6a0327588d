"""Plans in auth: seats cap an org's members; rpc.auth.set_plan stores a plan (docs/AUTH.md)."""

from __future__ import annotations

import pytest

from libs.common import bus as busmod
from libs.common import plans, rpc_types
from libs.common.bus import RpcError
from libs.common.rpc_types import OrgRequest, SetPlanRequest
from tests.support.auth import AuthClient


async def org_on_plan(auth: AuthClient, plan: str) -> dict:
    """A new org (the platform admin its owner: one seat) on `plan`."""
    org = await auth.create_org()
    await auth.call("PATCH", f"/api/v1/admin/orgs/{org['id']}/plan", json={"plan": plan})
    return org


async def test_adding_a_member_beyond_the_plans_seats_is_refused(auth: AuthClient) -> None:
    org = await org_on_plan(auth, "free")
    seats = plans.PLANS["free"].seats
    assert seats is not None
    for _ in range(seats - 1):  # the owner holds the first seat
        await auth.add_org_member(org["id"], await auth.create_user(), "member")
    one_more = await auth.create_user()
    admin = auth.bearer(await auth.admin_token())
    path = f"/api/v1/orgs/{org['id']}/members"
    resp = await auth.http.post(path, json={"user": one_more.id, "role": "member"}, headers=admin)
    assert resp.status_code == 402, resp.text
    error = resp.json()["error"]
    assert error["code"] == "PLAN_LIMIT"
    assert error["details"] == {"limit": seats, "used": seats, "plan": "free", "resource": "seats"}
    assert len((await auth.call("GET", path))["items"]) == seats
    # a member already counted takes no new seat: changing a role still works
    members = (await auth.call("GET", path))["items"]
    someone = next(m for m in members if m["role"] == "member")
    body = {"user": someone["user_id"], "role": "admin"}
    assert (await auth.http.post(path, json=body, headers=admin)).status_code == 200
    # a bigger plan makes room
    await auth.call("PATCH", f"/api/v1/admin/orgs/{org['id']}/plan", json={"plan": "pro"})
    resp = await auth.http.post(path, json={"user": one_more.id, "role": "member"}, headers=admin)
    assert resp.status_code == 201


async def test_accepting_an_invite_beyond_the_plans_seats_is_refused(auth: AuthClient) -> None:
    org = await org_on_plan(auth, "unknown-plan")  # an unknown plan has the free plan's limits
    seats = plans.limits_for("unknown-plan").seats
    assert seats is not None
    invited = await auth.create_user()
    body = {"email": "late@example.com", "role": "member"}
    invite = await auth.call("POST", f"/api/v1/orgs/{org['id']}/invites", json=body, expect=201)
    for _ in range(seats - 1):
        await auth.add_org_member(org["id"], await auth.create_user(), "member")
    resp = await auth.http.post(
        "/api/v1/auth/invites/accept",
        json={"token": invite["invite_token"]},
        headers=auth.bearer(invited.token),
    )
    assert resp.status_code == 402 and resp.json()["error"]["code"] == "PLAN_LIMIT"
    members = (await auth.call("GET", f"/api/v1/orgs/{org['id']}/members"))["items"]
    assert invited.id not in [m["user_id"] for m in members]
    assert any(m["status"] == "pending" for m in members)  # still redeemable once room is made


async def test_set_plan_stores_the_plan_and_rpc_org_reports_it(auth: AuthClient) -> None:
    org = await auth.create_org()
    settings = auth.settings  # type: ignore[attr-defined]
    async with busmod.connect(settings, name="billing") as bus:
        request = SetPlanRequest(org["slug"], "Team", actor="webhook:stripe")
        reply = await bus.call(rpc_types.AUTH_SET_PLAN, request)
        assert (reply.id, reply.plan) == (org["id"], "team")
        assert (await bus.call(rpc_types.AUTH_ORG, OrgRequest(org["id"]))).plan == "team"
        for bad, status in ((SetPlanRequest("no-such-org", "pro"), 404),
                            (SetPlanRequest(org["id"], "not a plan!"), 400)):  # fmt: skip
            with pytest.raises(RpcError) as caught:
                await bus.call(rpc_types.AUTH_SET_PLAN, bad)
            assert caught.value.status == status
    assert (await auth.call("GET", f"/api/v1/orgs/{org['id']}"))["plan"] == "team"
