"""A tool's `execution` (2025-11-25 `taskSupport`) through discovery, the API and review.

It is kept from every discovery path, shown by the tool API and the snapshot, and reviewed like
the rest of the definition."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from libs.common import bus as busmod
from libs.common import rpc
from services.registry import refresh, servers
from services.registry.context import Registry
from services.registry.schemas import ServerCreate
from tests.support.upstreams import DeclaringServer, make_upstream, run_upstream

OPTIONAL = {"taskSupport": "optional"}
REQUIRED = {"taskSupport": "required"}
SCHEMA = {"type": "object", "properties": {}}


async def register(reg: Registry, name: str, **fields: Any) -> Any:
    """Create a server through the registry's own logic and discover it."""
    async with reg.pool.acquire() as conn, conn.transaction():
        server = await servers.create(reg, conn, ServerCreate(name=name, **fields), None, "test")
    await refresh.refresh(reg, server["id"], "test")
    return server


def declaring(**execution: dict[str, str]) -> DeclaringServer:
    """The weather server in the handshake era, its tools declaring `execution` as given."""
    server = DeclaringServer("weather")
    server.execution.update(execution)
    return make_upstream(server=server)  # type: ignore[return-value]


@asynccontextmanager
async def sandbox_listing(reg: Registry, tools: list[dict[str, Any]]) -> AsyncIterator[None]:
    """A sandbox answering rpc.sandbox.discover with `tools` as a stdio server listed them."""

    async def discover(data: dict[str, Any]) -> dict[str, Any]:
        return {"tools": tools, "resources": [], "prompts": []}

    async with busmod.connect(reg.settings, name="sandbox-stand-in") as bus:
        await bus.serve(rpc.SANDBOX_DISCOVER, discover, queue="sandbox")
        yield


def fingerprint_before_execution(tool: dict[str, Any]) -> str:
    """The fingerprint as the registry computed it before it recorded `execution`."""
    fields = ("name", "title", "description", "input_schema", "output_schema", "annotations")
    canonical = orjson.dumps({f: tool[f] for f in fields}, option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


async def test_execution_is_kept_over_streamable_http_sse_and_the_sandbox(
    reg: Registry, api: Any
) -> None:
    for transport in ("streamable-http", "sse"):
        async with run_upstream(declaring(forecast=OPTIONAL), transport, handshake=True) as url:
            await register(reg, f"exec-{transport}", transport=transport, url=url)
    stdio_tools = [
        {"name": "convert", "inputSchema": SCHEMA, "execution": REQUIRED},
        {"name": "plain", "inputSchema": SCHEMA},
    ]
    async with sandbox_listing(reg, stdio_tools):
        await register(reg, "exec-stdio", transport="stdio", command="convert-server")
    names = ["exec-streamable-http", "exec-sse", "exec-stdio"]
    snap = await reg.bus.request(rpc.REGISTRY_SNAPSHOT, {"names": names})
    listed = {
        (view["name"], tool["name"]): tool["execution"]
        for view in snap["servers"]
        for tool in view["tools"]
    }
    shown = {}
    for name in names:
        resp = await api.get(f"/api/v1/servers/{name}/tools")
        assert resp.status_code == 200, resp.text
        shown.update({(name, t["name"]): t for t in resp.json()["items"]})
    one = (await api.get("/api/v1/servers/exec-sse/tools/forecast")).json()
    everywhere = (await api.get("/api/v1/tools", params={"server": "exec-stdio"})).json()
    assert listed == {
        ("exec-streamable-http", "forecast"): OPTIONAL,
        ("exec-streamable-http", "temperature"): None,
        ("exec-sse", "forecast"): OPTIONAL,
        ("exec-sse", "temperature"): None,
        ("exec-stdio", "convert"): REQUIRED,
        ("exec-stdio", "plain"): None,
    }
    assert {key: tool["execution"] for key, tool in shown.items()} == listed
    assert one["execution"] == OPTIONAL and one["state"] == "approved"
    assert {t["name"]: t["execution"] for t in everywhere["items"]} == {
        "convert": REQUIRED,
        "plain": None,
    }
    # a tool without `execution` has exactly the fingerprint it had before the upgrade
    for tool in shown.values():
        if tool["execution"] is None:
            assert tool["fingerprint"] == fingerprint_before_execution(tool)
        else:
            assert tool["fingerprint"] != fingerprint_before_execution(tool)


async def test_a_change_of_execution_is_quarantined_until_approved(reg: Registry, api: Any) -> None:
    upstream = declaring()
    tool_url = "/api/v1/servers/exec-change/tools/forecast"
    async with run_upstream(upstream, handshake=True) as url:
        server = await register(reg, "exec-change", transport="streamable-http", url=url)
        first = (await api.get(tool_url)).json()
        upstream.execution["forecast"] = OPTIONAL
        added = await refresh.refresh(reg, server["id"], "test")
        held = (await api.get(tool_url)).json()
        snap = await reg.bus.request(rpc.REGISTRY_SNAPSHOT, {"names": ["exec-change"]})
        approved = await api.post(f"{tool_url}/approve")
        upstream.execution["forecast"] = REQUIRED
        changed = await refresh.refresh(reg, server["id"], "test")
        held_again = (await api.get(tool_url)).json()
        upstream.execution["forecast"] = OPTIONAL  # back to what was approved
        reverted = await refresh.refresh(reg, server["id"], "test")
        final = (await api.get(tool_url)).json()
    assert first["execution"] is None and first["state"] == "approved"
    assert added["changes"] == [
        {"tool": "forecast", "change": "quarantined", "state": "quarantined"}
    ]
    assert held["quarantined"] and not held["routable"]
    assert held["diff"] == {"execution": {"before": None, "after": OPTIONAL}}
    assert held["previous_fingerprint"] == first["fingerprint"]
    routable = {t["name"]: t["routable"] for t in snap["servers"][0]["tools"]}
    assert routable == {"forecast": False, "temperature": True}
    assert approved.status_code == 200, approved.text
    assert approved.json()["routable"] and approved.json()["execution"] == OPTIONAL
    assert [c["change"] for c in changed["changes"]] == ["quarantined"]
    assert held_again["diff"] == {"execution": {"before": OPTIONAL, "after": REQUIRED}}
    assert reverted["changes"] == [{"tool": "forecast", "change": "restored", "state": "approved"}]
    assert final["routable"] and final["execution"] == OPTIONAL


async def test_new_tools_with_execution_follow_the_new_tool_policy(reg: Registry, api: Any) -> None:
    upstream = declaring()
    async with run_upstream(upstream, handshake=True) as url:
        server = await register(reg, "exec-new", transport="streamable-http", url=url)
        resp = await api.put("/api/v1/settings/new_tool_policy", json={"value": "quarantine"})
        assert resp.status_code == 200, resp.text

        @upstream.tool(description="Render a long report.")
        def report(title: str) -> str:
            return title

        upstream.execution["report"] = REQUIRED
        outcome = await refresh.refresh(reg, server["id"], "test")
        tool = (await api.get("/api/v1/servers/exec-new/tools/report")).json()
    assert outcome["changes"] == [
        {"tool": "report", "change": "discovered", "state": "quarantined"}
    ]
    assert tool["execution"] == REQUIRED and not tool["routable"]
