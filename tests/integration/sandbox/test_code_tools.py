"""Code tools: create → validate → test → approve → call → edit → approval again → rollback."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from libs.common import rpc
from libs.common.bus import Bus
from tests.integration.sandbox.conftest import EventTap

GREET = """
async def main(name: str):
    print("greeting", name)
    return f"hello {name}"
"""
SHOUT = """
async def main(name: str):
    return f"HELLO {name.upper()}"
"""
SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


def tool_name() -> str:
    """A tool name no other test uses."""
    return f"greet-{secrets.token_hex(3)}"


async def call_code(bus: Bus, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """tools/call on the built-in code server, as the gateway does it."""
    message = {
        "jsonrpc": "2.0",
        "id": 9,
        "method": "tools/call",
        "params": {"name": tool, "arguments": args},
    }
    reply = await bus.request(rpc.SANDBOX_CALL, {"server": "code", "message": message}, timeout=30)
    return reply["message"]


async def pending_tool_approval(api: httpx.AsyncClient, admin: dict, tool_id: str) -> dict:
    """The pending approval of a tool."""
    resp = await api.get(
        "/api/v1/sandbox/approvals/tools", params={"status": "pending"}, headers=admin
    )
    assert resp.status_code == 200
    return next(a for a in resp.json()["items"] if a["subject"] == tool_id)


async def test_a_code_tool_goes_from_draft_to_served_and_back_through_approvals(
    api: httpx.AsyncClient, admin: dict, bus: Bus, events: EventTap
) -> None:
    name = tool_name()
    body = {"name": name, "description": "Greets", "code": GREET, "input_schema": SCHEMA}
    check = await api.post("/api/v1/sandbox/tools/validate-code", json=body | {}, headers=admin)
    assert check.status_code == 422  # `name`/`description` are not validate-code fields
    check = await api.post(
        "/api/v1/sandbox/tools/validate-code",
        json={"code": GREET, "input_schema": SCHEMA},
        headers=admin,
    )
    assert check.status_code == 200
    assert check.json()["valid"] is True
    tried = await api.post(
        "/api/v1/sandbox/tools/test-code",
        json={"code": GREET, "input_schema": SCHEMA, "args": {"name": "ada"}},
        headers=admin,
    )
    assert tried.status_code == 200
    assert tried.json()["result"] == "hello ada"
    assert tried.json()["stdout"] == "greeting ada\n"
    assert tried.json()["memory_kb"] > 0

    created = await api.post("/api/v1/sandbox/tools", json=body, headers=admin)
    assert created.status_code == 201
    tool = created.json()
    assert tool["version"] == 1 and tool["needs_approval"] is True
    unapproved = await call_code(bus, name, {"name": "ada"})
    assert unapproved["error"]["code"] == -32602

    approval = await pending_tool_approval(api, admin, tool["id"])
    decided = await api.post(
        f"/api/v1/sandbox/approvals/tools/{approval['id']}/action",
        json={"action": "approve", "reason": "reviewed"},
        headers=admin,
    )
    assert decided.status_code == 200
    assert decided.json()["status"] == "approved"
    await events.wait_for(
        lambda e: e["type"] == "sandbox.approval.decided" and e["data"]["id"] == approval["id"]
    )
    await events.wait_for(
        lambda e: (
            e["type"] == "sandbox.code_tool.updated"
            and e["data"]["name"] == name
            and e["data"]["approved_version"] == 1
        )
    )
    listed = await bus.request(rpc.SANDBOX_DISCOVER, {"server": "code"}, timeout=10)
    assert name in {t["name"] for t in listed["tools"]}
    served = await call_code(bus, name, {"name": "ada"})
    assert served["result"]["structuredContent"] == {"result": "hello ada"}
    bad_args = await call_code(bus, name, {"name": 5})
    assert bad_args["error"]["code"] == -32602

    edited = await api.patch(f"/api/v1/sandbox/tools/{name}", json={"code": SHOUT}, headers=admin)
    assert edited.status_code == 200
    assert edited.json()["version"] == 2
    assert edited.json()["needs_approval"] is True
    still_v1 = await call_code(bus, name, {"name": "ada"})
    assert still_v1["result"]["structuredContent"] == {"result": "hello ada"}

    diff = await api.get(
        f"/api/v1/sandbox/tools/{name}/versions/compare", params={"a": 1, "b": 2}, headers=admin
    )
    assert diff.status_code == 200
    assert '+    return f"HELLO' in diff.json()["code_diff"]

    for bad in ("0", "x", "\u00b9", "\u0661"):  # superscript one, Arabic-Indic one: not ASCII
        refused = await api.post(
            f"/api/v1/sandbox/tools/{name}/versions/{bad}/rollback", headers=admin
        )
        assert refused.status_code == 422, bad
    rolled = await api.post(f"/api/v1/sandbox/tools/{name}/versions/1/rollback", headers=admin)
    assert rolled.status_code == 200
    assert rolled.json()["version"] == 3
    assert rolled.json()["approved_version"] == 3  # the approved content again: no new review
    versions = await api.get(f"/api/v1/sandbox/tools/{name}/versions", headers=admin)
    assert [v["version"] for v in versions.json()["items"]] == [3, 2, 1]

    revoked = await api.post(
        f"/api/v1/sandbox/approvals/tools/{approval['id']}/revoke", headers=admin
    )
    assert revoked.status_code == 200
    gone = await call_code(bus, name, {"name": "ada"})
    assert gone["error"]["code"] == -32602


async def test_invalid_code_is_refused_with_its_findings(
    api: httpx.AsyncClient, admin: dict
) -> None:
    cases = {
        "def main(:\n  pass": "syntax",
        "import subprocess\nasync def main():\n    return 1": "import",
        "async def main():\n    return eval('1')": "forbidden",
        "async def main():\n    return ().__class__.__bases__": "forbidden",
        "x = 1": "entry_point",
    }
    for code, kind in cases.items():
        resp = await api.post(
            "/api/v1/sandbox/tools/validate-code", json={"code": code}, headers=admin
        )
        assert resp.status_code == 200
        assert kind in {p["kind"] for p in resp.json()["problems"]}, code
    created = await api.post(
        "/api/v1/sandbox/tools",
        json={"name": tool_name(), "code": "import subprocess\nasync def main():\n  return 1"},
        headers=admin,
    )
    assert created.status_code == 422
    assert created.json()["error"]["code"] == "VALIDATION_ERROR"
    bad_schema = await api.post(
        "/api/v1/sandbox/tools/validate-code",
        json={"code": GREET, "input_schema": {"type": "array"}},
        headers=admin,
    )
    assert "schema" in {p["kind"] for p in bad_schema.json()["problems"]}


async def test_an_allowlisted_module_may_be_imported(api: httpx.AsyncClient, admin: dict) -> None:
    code = "import yaml\nasync def main():\n    return 1"
    before = await api.post(
        "/api/v1/sandbox/tools/validate-code", json={"code": code}, headers=admin
    )
    assert before.json()["valid"] is False
    added = await api.patch("/api/v1/sandbox/modules", json={"add": ["yaml"]}, headers=admin)
    assert added.status_code == 200
    assert "yaml" in {m["name"] for m in added.json()["items"]}
    after = await api.post(
        "/api/v1/sandbox/tools/validate-code", json={"code": code}, headers=admin
    )
    assert after.json()["valid"] is True
    await api.patch("/api/v1/sandbox/modules", json={"remove": ["yaml"]}, headers=admin)


async def test_a_module_request_is_approved_onto_the_allowlist(
    api: httpx.AsyncClient, admin: dict, events: EventTap
) -> None:
    module = f"pkg{secrets.token_hex(3)}"
    asked = await api.post(
        "/api/v1/sandbox/approvals/modules", json={"module": module}, headers=admin
    )
    assert asked.status_code == 201
    again = await api.post(
        "/api/v1/sandbox/approvals/modules", json={"module": module}, headers=admin
    )
    assert again.status_code == 409
    decided = await api.post(
        f"/api/v1/sandbox/approvals/modules/{asked.json()['id']}/action",
        json={"action": "approve"},
        headers=admin,
    )
    assert decided.status_code == 200
    modules = await api.get("/api/v1/sandbox/modules", headers=admin)
    assert module in {m["name"] for m in modules.json()["items"]}
    twice = await api.post(
        f"/api/v1/sandbox/approvals/modules/{asked.json()['id']}/action",
        json={"action": "reject"},
        headers=admin,
    )
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "CONFLICT"
    stats = await api.get("/api/v1/sandbox/approvals/stats", headers=admin)
    assert stats.json()["by_kind"]["module"]["approved"] >= 1


async def test_approvals_and_policy_are_for_admins_only(api: httpx.AsyncClient, auth: Any) -> None:
    user = await auth.create_user()
    for method, path in (
        ("GET", "/api/v1/sandbox/approvals/stats"),
        ("GET", "/api/v1/sandbox/policy"),
        ("GET", "/api/v1/sandbox/tools"),
        ("POST", "/api/v1/sandbox/tools/test-code"),
    ):
        resp = await api.request(method, path, headers=auth.bearer(user.token), json={"code": "x"})
        assert resp.status_code == 403, path
        assert resp.json()["error"]["code"] == "FORBIDDEN"


async def test_the_policy_is_read_and_patched_with_validation(
    api: httpx.AsyncClient, admin: dict
) -> None:
    current = await api.get("/api/v1/sandbox/policy", headers=admin)
    assert current.status_code == 200
    assert current.json()["terminal_enabled"] is False
    patched = await api.patch("/api/v1/sandbox/policy", json={"cpu_s": 5}, headers=admin)
    assert patched.status_code == 200
    assert patched.json()["cpu_s"] == 5
    bad = await api.patch("/api/v1/sandbox/policy", json={"memory_mb": 1}, headers=admin)
    assert bad.status_code == 422
    assert "memory_mb" in bad.json()["error"]["details"]["fields"]
    unknown = await api.patch("/api/v1/sandbox/policy", json={"root": True}, headers=admin)
    assert unknown.status_code == 422
    await api.patch(
        "/api/v1/sandbox/policy", json={"cpu_s": current.json()["cpu_s"]}, headers=admin
    )
