"""Every audit route × every kind of caller: the exact status (and error code)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from libs.common import bus as busmod
from libs.common.events import TOOL_CALLED, ToolCalled
from libs.devstack.harness import until
from tests.integration.audit.conftest import People, bearer

WHO = ("anonymous", "member", "org_admin", "platform_admin", "member_key", "token_read",
       "token_no_read")  # fmt: skip
PUBLIC = (200, 200, 200, 200, 200, 200, 200)
SCOPED = (401, 200, 200, 200, 200, 200, 200)
PLATFORM = (401, 403, 403, 200, 403, 403, 403)
ORG_ADMIN = (401, 403, 200, 200, 403, 403, 403)
NOT_FOUND = (401, 404, 404, 404, 404, 404, 404)
CODES = {401: "UNAUTHENTICATED", 403: "FORBIDDEN", 404: "NOT_FOUND"}


def routes(people: People) -> list[tuple[str, str, tuple[int, ...]]]:
    """(method, path, statuses in WHO order) for every HTTP route of the audit service."""
    a, missing = people.org_a, uuid.uuid4()
    return [
        ("GET", "/api/v1/health", PUBLIC),
        ("GET", "/api/v1/health/detail", PLATFORM),
        ("GET", "/api/v1/audit/calls", SCOPED),
        ("GET", "/api/v1/audit", SCOPED),
        ("GET", "/api/v1/audit/calls/export?format=ndjson", SCOPED),
        ("GET", f"/api/v1/audit/calls/{missing}", NOT_FOUND),
        ("GET", "/api/v1/audit/stats", SCOPED),
        ("GET", "/api/v1/activity", SCOPED),
        ("GET", "/api/v1/activity/logs", SCOPED),
        ("GET", "/api/v1/activity/stats", SCOPED),
        ("GET", "/api/v1/activity/recent", SCOPED),
        ("GET", "/api/v1/activity/export", SCOPED),
        ("GET", "/api/v1/audit/events", SCOPED),
        ("GET", "/api/v1/audit/events/export?format=csv", SCOPED),
        ("GET", "/api/v1/admin/audit", PLATFORM),
        ("GET", f"/api/v1/admin/audit/users/{people.bob.id}", PLATFORM),
        ("GET", f"/api/v1/admin/audit/orgs/{a['id']}", PLATFORM),
        ("GET", f"/api/v1/orgs/{a['slug']}/audit-events", ORG_ADMIN),
        ("GET", "/api/v1/monitoring/status", PLATFORM),
        ("GET", "/api/v1/monitoring/metrics", PLATFORM),
        ("GET", "/api/v1/dashboard", SCOPED),
        ("POST", "/api/v1/audit/retention/run", PLATFORM),
        ("GET", "/api/v1/alerts", ORG_ADMIN),
        ("GET", "/api/v1/alerts/rules", ORG_ADMIN),
    ]


@pytest.fixture(scope="module")
async def callers(people: People) -> dict[str, str | None]:
    """A credential of every kind of caller (None: anonymous)."""
    slug = people.org_a["slug"]
    return {
        "anonymous": None,
        "member": people.bob.token,
        "org_admin": people.alice.token,
        "platform_admin": people.admin,
        "member_key": await people.auth.api_key(people.bob.token),
        "token_read": await people.auth.service_token(slug, [f"read:org:{slug}"]),
        "token_no_read": await people.auth.service_token(slug, [f"write:org:{slug}"]),
    }


async def check(resp: httpx.Response, want: int, label: str) -> None:
    """Status as expected; an error carries its code."""
    assert resp.status_code == want, f"{label}: {resp.status_code} {resp.text[:200]}"
    if want in CODES:
        assert resp.json()["error"]["code"] == CODES[want], label


def headers(token: str | None) -> dict[str, str]:
    """The Authorization header, or none."""
    return bearer(token) if token else {}


async def test_every_route_answers_each_caller_with_the_documented_status(
    api: httpx.AsyncClient, people: People, callers: dict[str, str | None]
) -> None:
    for method, path, statuses in routes(people):
        for who, want in zip(WHO, statuses, strict=True):
            resp = await api.request(method, path, headers=headers(callers[who]))
            await check(resp, want, f"{method} {path} as {who}")


async def test_alert_rule_routes_answer_each_caller_with_the_documented_status(
    api: httpx.AsyncClient, people: People, callers: dict[str, str | None]
) -> None:
    admin = bearer(people.admin)
    for who, want in zip(WHO, ORG_ADMIN, strict=True):
        body = {"name": f"m-{uuid.uuid4().hex[:8]}", "kind": "latency_p95", "threshold": 1e9,
                "org": people.org_a["id"]}  # fmt: skip
        resp = await api.post("/api/v1/alerts/rules", json=body, headers=headers(callers[who]))
        await check(resp, 201 if want == 200 else want, f"POST rules as {who}")
        body["name"] = f"m-{uuid.uuid4().hex[:8]}"
        rule = (await api.post("/api/v1/alerts/rules", json=body, headers=admin)).json()
        path = f"/api/v1/alerts/rules/{rule['id']}"
        calls: list[tuple[str, dict[str, Any], int]] = [
            ("GET", {}, want),
            ("PATCH", {"json": {"threshold": 2e9}}, want),
            ("DELETE", {}, 204 if want == 200 else want),
        ]
        for method, extra, status in calls:
            resp = await api.request(method, path, headers=headers(callers[who]), **extra)
            await check(resp, status, f"{method} rule as {who}")


async def test_a_service_token_reads_its_orgs_calls_only_with_the_read_scope(
    api: httpx.AsyncClient,
    publisher: busmod.Bus,
    people: People,
    callers: dict[str, str | None],
) -> None:
    server = f"tok-{uuid.uuid4().hex[:8]}"
    payload = ToolCalled(server=server, tool="t", status="ok", org=people.org_a["id"])
    await publisher.publish(TOOL_CALLED.event(payload, source="gateway"))

    async def total(who: str) -> int:
        resp = await api.get("/api/v1/audit/calls", params={"server": server},
                             headers=headers(callers[who]))  # fmt: skip
        assert resp.status_code == 200
        return resp.json()["total"]

    await until(lambda: total("platform_admin"))
    seen = {who: await total(who) for who in WHO[1:]}
    assert seen == {"member": 0, "org_admin": 1, "platform_admin": 1, "member_key": 0,
                    "token_read": 1, "token_no_read": 0}  # fmt: skip
