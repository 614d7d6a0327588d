"""Org policies: CRUD, validation, org isolation, approvals, and CI evaluation with tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from libs.common import events as ev
from services.registry.context import Registry
from tests.support.catalog import empty_catalog, insert_version
from tests.support.events import Events

MIN_SCORE = {
    "name": "Require Minimum Score",
    "description": "Deny MCPs with global score below 70",
    "action": "DENY",
    "target_type": "SCORE",
    "target_value": "min:70",
    "priority": 20,
    "enabled": True,
}
CI_REQUEST = {
    "environment": "production",
    "mcps": [
        {"name": "mcp-database-tools", "version": "commit-a3f91c2-2026-01-14"},
        {"name": "mcp-file-system", "version": "commit-x9y8z7w-2026-01-10"},
    ],
}


@pytest.fixture(autouse=True)
async def no_catalog(reg: Registry) -> AsyncIterator[None]:
    """Every test starts without MCPs and policies."""
    await empty_catalog(reg.pool)
    yield


@pytest.fixture
async def org(auth: Any) -> dict[str, Any]:
    """A new org (the platform admin owns it)."""
    return await auth.create_org()


def client(registry_url: str, token: str) -> httpx.AsyncClient:
    """A registry client with a bearer token."""
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.AsyncClient(base_url=registry_url, headers=headers, timeout=20)


async def member(auth: Any, org: dict[str, Any], role: str) -> str:
    """The JWT of a new user with `role` in `org`."""
    user = await auth.create_user()
    await auth.add_org_member(org["id"], user, role)
    return (await auth.login(user.username, user.password))["access_token"]


async def test_an_org_admin_creates_lists_changes_and_deletes_a_policy(
    api: httpx.AsyncClient, org: dict[str, Any], events: Events
) -> None:
    resp = await api.post(f"/api/v1/orgs/{org['slug']}/policies", json=MIN_SCORE)
    assert resp.status_code == 201, resp.text
    policy = resp.json()
    assert policy["org_id"] == org["id"]
    assert {k: policy[k] for k in MIN_SCORE} == MIN_SCORE
    await events.wait_for(lambda e: e.type == ev.POLICY_CREATED.name)
    listed = (await api.get(f"/api/v1/orgs/{org['id']}/policies")).json()
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == policy["id"]
    url = f"/api/v1/orgs/{org['id']}/policies/{policy['id']}"
    patched = await api.patch(url, json={"enabled": False, "target_value": "max:10"})
    assert patched.status_code == 200
    assert patched.json()["enabled"] is False
    assert patched.json()["name"] == MIN_SCORE["name"]
    assert patched.json()["version"] > policy["version"]
    put = await api.put(url, json={**MIN_SCORE, "name": "renamed"})
    assert put.json()["name"] == "renamed"
    assert put.json()["enabled"] is True
    assert (await api.get(url)).json()["name"] == "renamed"
    assert (await api.delete(url)).status_code == 204
    assert (await api.get(url)).status_code == 404
    await events.wait_for(lambda e: e.type == ev.POLICY_DELETED.name)


@pytest.mark.parametrize(
    "change",
    [
        {"target_value": "min:101"},
        {"target_value": "70"},
        {"target_type": "LICENSE", "target_value": "Not-A-Licence"},
        {"target_type": "CONTROL", "target_value": "SEC 001"},
        {"action": "MAYBE"},
        {"target_type": "COLOUR"},
        {"priority": -1},
        {"name": ""},
    ],
)
async def test_an_invalid_policy_is_422_and_stores_nothing(
    api: httpx.AsyncClient, org: dict[str, Any], change: dict[str, Any]
) -> None:
    resp = await api.post(f"/api/v1/orgs/{org['id']}/policies", json={**MIN_SCORE, **change})
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
    assert (await api.get(f"/api/v1/orgs/{org['id']}/policies")).json()["total"] == 0


async def test_a_patch_that_breaks_the_target_or_nulls_a_field_is_422(
    api: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    policy = (await api.post(f"/api/v1/orgs/{org['id']}/policies", json=MIN_SCORE)).json()
    url = f"/api/v1/orgs/{org['id']}/policies/{policy['id']}"
    assert (await api.patch(url, json={"target_type": "LICENSE"})).status_code == 422
    assert (await api.patch(url, json={"name": None})).status_code == 422
    assert (await api.get(url)).json()["target_value"] == "min:70"


async def test_a_taken_name_is_409(api: httpx.AsyncClient, org: dict[str, Any]) -> None:
    await api.post(f"/api/v1/orgs/{org['id']}/policies", json=MIN_SCORE)
    resp = await api.post(f"/api/v1/orgs/{org['id']}/policies", json=MIN_SCORE)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "CONFLICT"


async def test_members_read_admins_write_and_another_org_sees_nothing(
    api: httpx.AsyncClient, auth: Any, org: dict[str, Any], registry_url: str
) -> None:
    policy = (await api.post(f"/api/v1/orgs/{org['id']}/policies", json=MIN_SCORE)).json()
    other = await auth.create_org()
    async with client(registry_url, await member(auth, org, "member")) as mem:
        assert (await mem.get(f"/api/v1/orgs/{org['slug']}/policies")).json()["total"] == 1
        assert (await mem.get("/api/v1/policies")).json()["total"] == 1
        resp = await mem.post(f"/api/v1/orgs/{org['id']}/policies", json={**MIN_SCORE, "name": "x"})
        assert resp.status_code == 403
    async with client(registry_url, await member(auth, org, "admin")) as adm:
        resp = await adm.post("/api/v1/policies", json={**MIN_SCORE, "name": "mine"})
        assert resp.status_code == 201
        assert resp.json()["org_id"] == org["id"]
    async with client(registry_url, await member(auth, other, "owner")) as stranger:
        for path in (
            f"/api/v1/orgs/{org['id']}/policies",
            f"/api/v1/orgs/{org['slug']}/policies/{policy['id']}",
        ):
            resp = await stranger.get(path)
            assert resp.status_code == 404
            assert resp.json()["error"]["code"] == "NOT_FOUND"
        resp = await stranger.delete(f"/api/v1/orgs/{org['id']}/policies/{policy['id']}")
        assert resp.status_code == 404
        # its own org's path with the other org's policy id: absent too
        resp = await stranger.get(f"/api/v1/orgs/{other['id']}/policies/{policy['id']}")
        assert resp.status_code == 404
    assert (await api.get(f"/api/v1/orgs/{org['id']}/policies")).json()["total"] == 2


async def test_approvals_are_recorded_listed_withdrawn_and_announced(
    api: httpx.AsyncClient, reg: Registry, org: dict[str, Any], events: Events
) -> None:
    version = await insert_version(reg.pool, "mcp-database-tools")
    url = f"/api/v1/orgs/{org['id']}/policies/approvals"
    body = {"mcp": version.mcp, "version": version.visible_version, "reason": "reviewed"}
    resp = await api.post(url, json=body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["version_id"] == str(version.version_id)
    await events.wait_for(lambda e: e.type == ev.POLICY_UPDATED.name and e.org == org["id"])
    assert (await api.get(url)).json()["total"] == 1
    missing = await api.post(url, json={**body, "version": "nope"})
    assert missing.status_code == 404
    assert (await api.request("DELETE", url, json=body)).status_code == 204
    assert (await api.get(url)).json()["total"] == 0
    assert (await api.request("DELETE", url, json=body)).status_code == 404


async def test_another_orgs_private_mcp_cannot_be_approved(
    api: httpx.AsyncClient, auth: Any, reg: Registry, org: dict[str, Any]
) -> None:
    other = await auth.create_org()
    secret = await insert_version(reg.pool, "secret-mcp", org=other["id"], visibility="private")
    body = {"mcp": secret.mcp, "version": secret.visible_version}
    resp = await api.post(f"/api/v1/orgs/{org['id']}/policies/approvals", json=body)
    assert resp.status_code == 404


async def ci_token(auth: Any, org: dict[str, Any], scopes: list[str] | None = None) -> str:
    """A service token of `org` (by default with `ci:org:<slug>`)."""
    return await auth.service_token(org["id"], scopes or [f"ci:org:{org['slug']}"])


async def test_ci_passes_when_every_mcp_is_allowed(
    api: httpx.AsyncClient, auth: Any, reg: Registry, org: dict[str, Any], registry_url: str
) -> None:
    await insert_version(reg.pool, "mcp-database-tools", score=85)
    await insert_version(
        reg.pool, "mcp-file-system", visible_version="commit-x9y8z7w-2026-01-10", score=78
    )
    await api.post(f"/api/v1/orgs/{org['id']}/policies", json=MIN_SCORE)
    async with client(registry_url, await ci_token(auth, org)) as ci:
        resp = await ci.post("/api/v1/ci/evaluate", json={**CI_REQUEST, "org_id": org["id"]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["result"] == "PASS"
    assert body["environment"] == "production"
    assert body["evaluated_at"].endswith("Z")
    scores = {m["name"]: (m["result"], m["global_score"]) for m in body["mcps"]}
    assert scores == {"mcp-database-tools": ("ALLOWED", 85), "mcp-file-system": ("ALLOWED", 78)}


async def test_ci_fails_with_the_matched_policy_and_the_reason(
    api: httpx.AsyncClient, auth: Any, reg: Registry, org: dict[str, Any], registry_url: str
) -> None:
    await insert_version(reg.pool, "mcp-database-tools", score=85)
    await insert_version(reg.pool, "mcp-unsafe-example", score=35, visible_version="v1")
    policy = (await api.post(f"/api/v1/orgs/{org['id']}/policies", json=MIN_SCORE)).json()
    request = {
        "org_id": org["slug"],
        "mcps": [{"name": "mcp-database-tools"}, {"name": "mcp-unsafe-example"}],
    }
    async with client(registry_url, await ci_token(auth, org)) as ci:
        body = (await ci.post("/api/v1/ci/evaluate", json=request)).json()
    assert body["result"] == "FAIL"
    unsafe = body["mcps"][1]
    assert unsafe["result"] == "DENIED"
    assert unsafe["global_score"] == 35
    assert unsafe["reason"] == "Policy 'Require Minimum Score' denied: global score 35 < 70"
    assert unsafe["matched_policy"] == {"id": policy["id"], "name": MIN_SCORE["name"]}
    assert body["mcps"][0]["result"] == "ALLOWED"


async def test_ci_answers_not_found_for_an_unknown_or_foreign_private_mcp(
    auth: Any, reg: Registry, org: dict[str, Any], registry_url: str
) -> None:
    other = await auth.create_org()
    await insert_version(reg.pool, "theirs", org=other["id"], visibility="private")
    await insert_version(reg.pool, "ours", org=org["id"], visibility="private")
    request = {"org_id": org["id"], "mcps": [{"name": "theirs"}, {"name": "ours"}]}
    async with client(registry_url, await ci_token(auth, org)) as ci:
        body = (await ci.post("/api/v1/ci/evaluate", json=request)).json()
    assert body["result"] == "FAIL"
    assert [m["result"] for m in body["mcps"]] == ["NOT_FOUND", "ALLOWED"]


async def test_ci_require_approval_passes_once_the_version_is_approved(
    api: httpx.AsyncClient, auth: Any, reg: Registry, org: dict[str, Any], registry_url: str
) -> None:
    version = await insert_version(reg.pool, "mcp-database-tools", score=60)
    hold = {**MIN_SCORE, "action": "REQUIRE_APPROVAL", "name": "review"}
    await api.post(f"/api/v1/orgs/{org['id']}/policies", json=hold)
    request = {"org_id": org["id"], "mcps": [{"name": version.mcp}]}
    async with client(registry_url, await ci_token(auth, org)) as ci:
        first = (await ci.post("/api/v1/ci/evaluate", json=request)).json()
        await api.post(
            f"/api/v1/orgs/{org['id']}/policies/approvals",
            json={"mcp": version.mcp, "version": version.visible_version},
        )
        second = (await ci.post("/api/v1/ci/evaluate", json=request)).json()
    assert first["mcps"][0]["result"] == "REQUIRES_APPROVAL"
    assert first["result"] == "FAIL"
    assert second["result"] == "PASS"


async def test_ci_without_the_scope_is_403_and_another_orgs_token_is_404(
    auth: Any, reg: Registry, org: dict[str, Any], registry_url: str
) -> None:
    await insert_version(reg.pool, "mcp-database-tools")
    request = {"org_id": org["id"], "mcps": [{"name": "mcp-database-tools"}]}
    reader = await ci_token(auth, org, [f"read:org:{org['slug']}"])
    async with client(registry_url, reader) as ci:
        resp = await ci.post("/api/v1/ci/evaluate", json=request)
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "FORBIDDEN"
    other = await auth.create_org()
    async with client(registry_url, await ci_token(auth, other)) as ci:
        for ref in (org["id"], org["slug"]):
            resp = await ci.post("/api/v1/ci/evaluate", json={**request, "org_id": ref})
            assert resp.status_code == 404
            assert resp.json()["error"]["code"] == "NOT_FOUND"


async def test_ci_rejects_a_malformed_request(
    auth: Any, org: dict[str, Any], registry_url: str
) -> None:
    async with client(registry_url, await ci_token(auth, org)) as ci:
        for body in ({"org_id": org["id"], "mcps": []}, {"mcps": [{"name": "x"}]}):
            resp = await ci.post("/api/v1/ci/evaluate", json=body)
            assert resp.status_code == 422
        unauth = await ci.post(
            "/api/v1/ci/evaluate", json={}, headers={"Authorization": "Bearer nope"}
        )
        assert unauth.status_code == 401


async def test_the_gateway_rpc_gives_enabled_policies_and_approvals(
    api: httpx.AsyncClient, reg: Registry, org: dict[str, Any]
) -> None:
    from libs.common import rpc_types

    version = await insert_version(reg.pool, "mcp-database-tools")
    await api.post(f"/api/v1/orgs/{org['id']}/policies", json=MIN_SCORE)
    await api.post(f"/api/v1/orgs/{org['id']}/policies", json={**MIN_SCORE, "name": "off",
                                                                "enabled": False})  # fmt: skip
    await api.post(
        f"/api/v1/orgs/{org['id']}/policies/approvals",
        json={"mcp": version.mcp, "version": version.visible_version},
    )
    reply = await asyncio.wait_for(
        reg.bus.call(rpc_types.REGISTRY_POLICIES, rpc_types.PoliciesRequest(orgs=[org["id"]])), 5
    )
    assert [o.org for o in reply.orgs] == [org["id"]]
    assert [p.name for p in reply.orgs[0].policies] == [MIN_SCORE["name"]]
    assert reply.orgs[0].approved == [str(version.version_id)]


async def test_an_org_that_does_not_exist_is_404_even_to_a_platform_admin(
    api: httpx.AsyncClient,
) -> None:
    resp = await api.post("/api/v1/orgs/no-such-org/policies", json=MIN_SCORE)
    assert resp.status_code == 404
    resp = await api.post("/api/v1/ci/evaluate", json={**CI_REQUEST, "org_id": "no-such-org"})
    assert resp.status_code == 404
