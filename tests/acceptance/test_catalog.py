"""The certification catalog through nginx on the booted platform.

Versions scanned in the sandbox, scores and controls read anonymously, the subregistry, an org
policy enforced in CI and at the gateway, a PDF report, a webhook with a bad signature, the
anonymous limit — and another org's credential refused throughout.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import httpx

from tests.acceptance.platform_boot import Platform
from tests.acceptance.rest import Admin, bearer, expect, unique
from tests.acceptance.wire import register_http, wait_routed
from tests.e2e.gateway_support import call_tool, list_tools, tool_names
from tests.support import node, tarballs
from tests.support.upstreams import make_upstream, run_upstream

# the tools make_upstream serves, as a source declares them: the certified snapshot lists both
MATCHING_SERVER = '''"""Weather."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("weather")


@server.tool(description="Current temperature in a city.")
def temperature(city: str) -> str:
    return f"21C in {city}"


@server.tool(description="Forecast for the next days.")
def forecast(city: str, days: int = 3) -> str:
    return f"sunny for {days} days in {city}"
'''
GZIP = {"Content-Type": "application/gzip"}


async def upload(api: httpx.AsyncClient, admin: Admin, mcp: str, name: str, body: bytes) -> dict:
    """A tarball version of the MCP, PENDING."""
    resp = await api.post(
        f"/api/v1/mcps/{mcp}/versions",
        params={"version": name},
        content=body,
        headers={**admin.headers, **GZIP},
    )
    return expect(resp, 201, f"catalog: upload the {name} tarball")


async def certified(api: httpx.AsyncClient, admin: Admin, mcp: str, version: str) -> dict[str, Any]:
    """Poll the version until its scan in the sandbox ended (authenticated: no anonymous limit)."""
    async with asyncio.timeout(180):
        while True:
            resp = await api.get(f"/api/v1/mcps/{mcp}/versions/{version}", headers=admin.headers)
            body = expect(resp, 200, "catalog: read a version")
            if body["status"] not in ("PENDING", "SCANNING"):
                assert body["status"] == "CERTIFIED", f"catalog: the scan ended {body}"
                return body
            await asyncio.sleep(0.5)


def failed(controls: dict[str, Any]) -> set[str]:
    return {c["control_id"] for c in controls["controls"] if not c["passed"]}


async def routed(api: httpx.AsyncClient, token: str, tool: str, present: bool, what: str) -> None:
    """Poll tools/list through nginx until `tool` is (or is no longer) listed: 5 s at most."""
    try:
        async with asyncio.timeout(5):
            while (tool in tool_names(await list_tools(api, "", token))) != present:
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"gateway: {what}: {tool} listed is not {present}") from None


async def new_org(api: httpx.AsyncClient, admin: Admin) -> tuple[dict[str, Any], str]:
    """A new org and its slug."""
    slug = unique("cat")
    resp = await api.post("/api/v1/orgs", json={"slug": slug}, headers=admin.headers)
    return expect(resp, 201, "auth: create an org"), slug


async def org_token(api: httpx.AsyncClient, admin: Admin, slug: str, server: str | None) -> str:
    """A service token of the org with its ci/read scopes (and, via a team, `server` to call)."""
    grants = []
    if server is not None:
        team = unique("team")
        body = {"name": team, "org": slug}
        expect(await api.post("/api/v1/teams", json=body, headers=admin.headers), 201, "team")
        grant = {"server": server, "permissions": ["read", "execute"]}
        resp = await api.post(f"/api/v1/teams/{team}/grants", json=grant, headers=admin.headers)
        expect(resp, 201, "auth: a team grant")
        grants = [{"server": server, "permissions": ["execute"]}]
    body = {
        "name": unique("ci"),
        "scopes": [f"ci:org:{slug}", f"read:org:{slug}"],
        "grants": grants,
    }
    resp = await api.post(f"/api/v1/orgs/{slug}/tokens", json=body, headers=admin.headers)
    return expect(resp, 201, "auth: a service token of the org")["token"]


async def test_the_catalog_scans_in_the_sandbox_and_serves_scores_and_the_subregistry(
    api: httpx.AsyncClient, admin: Admin
) -> None:
    name = unique("cert")
    mcp = expect(
        await api.post(
            "/api/v1/admin/mcps",
            json={"name": name, "visibility": "public", "description": "Weather tools"},
            headers=admin.headers,
        ),
        201,
        "catalog: a platform admin adds a public MCP",
    )
    clean = await upload(api, admin, mcp["id"], "clean", tarballs.clean())
    risky = await upload(api, admin, mcp["id"], "risky", tarballs.risky())
    await certified(api, admin, mcp["id"], clean["id"])
    await certified(api, admin, mcp["id"], risky["id"])

    results = {}
    for label, version in (("clean", clean), ("risky", risky)):
        base = f"/api/v1/mcps/{mcp['id']}/versions/{version['id']}"
        results[label] = {
            part: expect(await api.get(f"{base}/{part}"), 200, f"catalog: {label} {part}")
            for part in ("snapshot/latest", "controls", "scores")
        }
    assert failed(results["clean"]["controls"]) == set(), results["clean"]["controls"]
    assert {"SECRET_EXPOSED", "VULNERABLE_DEPENDENCY", "TOOL_POISONING"} <= failed(
        results["risky"]["controls"]
    ), "catalog: the planted secret, vulnerable dependency and poisoned tool fail their controls"
    clean_scores, risky_scores = results["clean"]["scores"], results["risky"]["scores"]
    assert risky_scores["global_score"] < clean_scores["global_score"]
    assert risky_scores["grade"] > clean_scores["grade"], "catalog: the risky source grades lower"
    snapshot = results["risky"]["snapshot/latest"]
    assert snapshot["isolation"] not in (None, "none"), "catalog: the scan ran confined"
    assert "AKIA" not in json.dumps(results["risky"]["controls"]), "catalog: a secret leaked"

    listed = expect(await api.get("/api/v1/mcps", params={"q": name}), 200, "catalog: search")
    assert [m["name"] for m in listed["mcps"]] == [name]
    assert listed["mcps"][0]["latest_version"]["visible_version"] == "risky"
    servers = expect(
        await api.get("/v0.1/servers", params={"search": name, "version": "latest"}),
        200,
        "subregistry: list",
    )
    assert [s["server"]["name"] for s in servers["servers"]] == [name]
    assert servers["servers"][0]["server"]["version"] == "risky"
    tarball = await api.get(f"/api/v1/mcps/{mcp['id']}/versions/{clean['id']}/tarball")
    assert hashlib.sha256(tarball.content).hexdigest() == clean["sha256"]


async def test_an_org_policy_holds_in_ci_and_at_the_gateway_and_other_orgs_are_refused(
    platform: Platform, api: httpx.AsyncClient, admin: Admin
) -> None:
    upstream = unique("pol")
    name = unique("certmcp")
    mcp = expect(
        await api.post(
            "/api/v1/admin/mcps", json={"name": name, "visibility": "public"}, headers=admin.headers
        ),
        201,
        "catalog: a public MCP",
    )
    matching = tarballs.build({**tarballs.COMMON, "server.py": MATCHING_SERVER,
                               "requirements.txt": "requests==2.32.3\n"})  # fmt: skip
    good = await upload(api, admin, mcp["id"], "good", matching)
    bad = await upload(api, admin, mcp["id"], "bad", tarballs.risky())
    await certified(api, admin, mcp["id"], good["id"])
    await certified(api, admin, mcp["id"], bad["id"])
    good_score = expect(
        await api.get(f"/api/v1/mcps/{mcp['id']}/versions/{good['id']}/scores"), 200, "scores"
    )["global_score"]

    org, slug = await new_org(api, admin)
    _, other_slug = await new_org(api, admin)
    other_token = await org_token(api, admin, other_slug, None)
    async with run_upstream(make_upstream(upstream)) as url:
        await register_http(api, admin, upstream, url, org=org["id"])
        token = await org_token(api, admin, slug, upstream)
        linked = await api.patch(
            f"/api/v1/servers/{upstream}",
            json={"catalog_version": good["id"]},
            headers=admin.headers,
        )
        assert (
            expect(linked, 200, "registry: link a server")["certification"]["version_id"]
            == (good["id"])
        )
        tool = f"{upstream}__temperature"
        await wait_routed(api, token, tool)

        policies = f"/api/v1/orgs/{slug}/policies"
        deny = {"name": "No MIT", "action": "DENY", "target_type": "LICENSE",
                "target_value": "MIT", "priority": 10}  # fmt: skip
        policy = expect(
            await api.post(policies, json=deny, headers=admin.headers), 201, "policies: create"
        )
        await routed(api, token, tool, False, "a DENY policy")
        refused = await call_tool(api, "", token, tool, {"city": "Oslo"})
        error = refused.json().get("error") or {}
        assert error.get("code") == -32003 and "No MIT" in json.dumps(error), (
            f"gateway: a denied server's call names the policy: {refused.text}"
        )
        # the TypeScript SDK client (a 2025 session) sees the same: not listed, refused
        plan = [{"key": "t", "name": tool, "arguments": {"city": "Oslo"}}]
        report = await node.run_sdk_client(f"{platform.url}/mcp", token, "streamable", plan)
        assert "failure" not in report, report
        assert tool not in [t["name"] for t in report["tools"]], "ts sdk: a denied tool listed"
        assert report["calls"]["t"].get("error", {}).get("code") == -32003, report["calls"]
        resp = await api.patch(
            f"{policies}/{policy['id']}", json={"enabled": False}, headers=admin.headers
        )
        expect(resp, 200, "policies: disable")
        await routed(api, token, tool, True, "the policy disabled")

        score = {"name": "Require Minimum Score", "action": "DENY", "target_type": "SCORE",
                 "target_value": f"min:{good_score}", "priority": 20}  # fmt: skip
        expect(await api.post(policies, json=score, headers=admin.headers), 201, "policies")
        versions = [{"name": name, "version": "good"}, {"name": name, "version": "bad"}]
        request = {"org_id": slug, "environment": "production", "mcps": versions}
        verdict = expect(
            await api.post("/api/v1/ci/evaluate", json=request, headers=bearer(token)),
            200,
            "ci: evaluate",
        )
        assert verdict["result"] == "FAIL", verdict
        assert [m["result"] for m in verdict["mcps"]] == ["ALLOWED", "DENIED"], verdict
        assert verdict["mcps"][1]["matched_policy"]["name"] == "Require Minimum Score"

        # another org's credential: the org's policies and evaluations do not exist for it
        resp = await api.get(policies, headers=bearer(other_token))
        assert resp.status_code == 404, f"tenancy: another org reads the policies: {resp.text}"
        resp = await api.post("/api/v1/ci/evaluate", json=request, headers=bearer(other_token))
        assert resp.status_code == 404, f"tenancy: another org evaluates: {resp.text}"
        resp = await api.post(
            f"/api/v1/orgs/{other_slug}/policies", json=deny, headers=bearer(token)
        )
        assert resp.status_code == 404, f"tenancy: a token writes another org's policy: {resp.text}"

        snapshot = expect(
            await api.get(f"/api/v1/mcps/{mcp['id']}/versions/{bad['id']}/snapshot/latest"),
            200,
            "snapshot",
        )
        report = expect(
            await api.post(
                f"/api/v1/orgs/{slug}/reports",
                json={"snapshot_id": snapshot["id"], "format": "PDF"},
                headers=admin.headers,
            ),
            202,
            "reports: request a PDF",
        )
        pdf = f"/api/v1/orgs/{slug}/reports/{report['id']}.pdf"
        async with asyncio.timeout(30):
            while (resp := await api.get(pdf, headers=admin.headers)).status_code == 409:
                await asyncio.sleep(0.2)
        assert resp.status_code == 200 and resp.content.startswith(b"%PDF"), resp.text[:200]
        resp = await api.get(pdf, headers=bearer(other_token))
        assert resp.status_code == 404, "tenancy: another org downloads the report"


async def test_webhooks_refuse_bad_signatures_and_anonymous_callers_are_limited(
    api: httpx.AsyncClient, admin: Admin
) -> None:
    secret = unique("whsec")
    resp = await api.put(
        "/api/v1/settings/webhook_github_secret", json={"value": secret}, headers=admin.headers
    )
    expect(resp, 200, "settings: the GitHub webhook secret")
    raw = json.dumps({"zen": "hi", "hook_id": 1}).encode()
    good = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "ping", "Content-Type": "application/json"}
    bad = await api.post(
        "/api/v1/webhooks/github",
        content=raw,
        headers={**headers, "X-GitHub-Delivery": unique("d"), "X-Hub-Signature-256": "sha256=00"},
    )
    assert bad.status_code == 401, f"webhooks: a bad signature: {bad.status_code} {bad.text}"
    delivery = unique("d")
    signed = {**headers, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": good}
    first = await api.post("/api/v1/webhooks/github", content=raw, headers=signed)
    assert first.status_code == 200, f"webhooks: a signed ping: {first.text}"
    again = await api.post("/api/v1/webhooks/github", content=raw, headers=signed)
    assert again.json().get("duplicate") is True, f"webhooks: a redelivery: {again.text}"

    # anonymous: 15 a minute per address, then 429 with Retry-After (earlier tests spent some)
    for _ in range(40):  # 15 a minute: even across a window boundary, one 429 within 40
        resp = await api.get("/api/v1/mcps", params={"limit": 1})
        if resp.status_code == 429:
            break
        assert resp.headers.get("X-RateLimit-Limit") == "15", dict(resp.headers)
    assert resp.status_code == 429, "catalog: anonymous callers are limited"
    assert int(resp.headers["Retry-After"]) > 0
    authed = await api.get("/api/v1/mcps", params={"limit": 1}, headers=admin.headers)
    assert authed.status_code == 200, "catalog: an authenticated caller is not limited"
