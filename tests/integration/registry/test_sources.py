"""External MCP sources: add, discover, import into a server, rug pull, delete (MCPBox)."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer

from libs.common.rpc_types import SnapshotRequest
from services.registry.context import Registry
from services.registry.rpc import snapshot
from tests.support.upstreams import make_upstream, run_upstream


def make_source() -> MCPServer:
    """An external MCP server with two tools of its own."""
    server = MCPServer("library")

    @server.tool(description="Look a book up by title.")
    def lookup(title: str) -> str:
        return f"found {title}"

    @server.tool(description="Borrow a book.")
    def borrow(title: str) -> str:
        return f"borrowed {title}"

    return server


async def test_a_sources_tools_are_discovered_imported_and_survive_a_refresh(
    api: Any, reg: Registry
) -> None:
    library = make_source()
    async with run_upstream(make_upstream()) as host_url, run_upstream(library) as source_url:
        resp = await api.post(
            "/api/v1/servers",
            json={"name": "weather", "transport": "streamable-http", "url": host_url},
        )
        assert resp.status_code == 201, resp.text
        body = {"name": "library", "url": source_url, "headers": {"Authorization": "Bearer s3"}}
        resp = await api.post("/api/v1/servers/weather/sources", json=body)
        assert resp.status_code == 201, resp.text
        source = resp.json()
        assert source["headers"] == {"Authorization": "********"}
        assert "s3" not in resp.text
        sid = source["id"]
        early = await api.post(f"/api/v1/sources/{sid}/import", json={})
        assert early.status_code == 409 and early.json()["error"]["code"] == "CONFLICT"

        resp = await api.post(f"/api/v1/sources/{sid}/discover")
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "healthy"
        assert sorted(t["name"] for t in resp.json()["source"]["tools"]) == ["borrow", "lookup"]

        bad = await api.post(f"/api/v1/sources/{sid}/import", json={"tools": ["nope"]})
        assert bad.status_code == 422 and "tools" in bad.json()["error"]["details"]["fields"]
        resp = await api.post(f"/api/v1/sources/{sid}/import", json={"tools": ["lookup"]})
        assert resp.status_code == 200, resp.text
        assert resp.json()["imported"] == [{"tool": "lookup", "state": "approved", "flags": []}]

        tools = (await api.get("/api/v1/servers/weather/tools")).json()["items"]
        by_name = {t["name"]: t for t in tools}
        assert set(by_name) == {"forecast", "temperature", "lookup"}
        assert by_name["lookup"]["source_id"] == sid and by_name["lookup"]["routable"]
        assert by_name["forecast"]["source_id"] is None
        # the gateway learns where calls to the imported tool go (headers decrypted)
        snap = await snapshot(reg, SnapshotRequest(names=["weather"]))
        upstreams = {t.name: t.upstream for t in snap.servers[0].tools}
        assert upstreams["forecast"] is None
        assert upstreams["lookup"] is not None and upstreams["lookup"].url == source_url
        assert upstreams["lookup"].headers == {"Authorization": "Bearer s3"}

        # the host's own refresh leaves imported tools alone
        resp = await api.post("/api/v1/servers/weather/refresh")
        assert resp.status_code == 200 and resp.json()["changes"] == []
        listed = (await api.get("/api/v1/servers/weather/sources")).json()
        assert listed["total"] == 1 and listed["items"][0]["imported_count"] == 1
        imported = {t["name"]: t["imported"] for t in listed["items"][0]["tools"]}
        assert imported == {"lookup": True, "borrow": False}

        # rug pull at the source: the imported tool is quarantined on the next discovery
        library.remove_tool("lookup")
        library.add_tool(lambda title: title, name="lookup", description="Look a book up, v2.")
        resp = await api.post(f"/api/v1/sources/{sid}/discover")
        assert resp.status_code == 200
        assert resp.json()["changes"] == [
            {"tool": "lookup", "change": "quarantined", "state": "quarantined"}
        ]
        tool = (await api.get("/api/v1/servers/weather/tools/lookup")).json()
        assert tool["quarantined"] and not tool["routable"] and "description" in tool["diff"]

        resp = await api.delete(f"/api/v1/sources/{sid}")
        assert resp.status_code == 204
        gone = await api.get(f"/api/v1/sources/{sid}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "NOT_FOUND"
        names = {
            t["name"] for t in (await api.get("/api/v1/servers/weather/tools")).json()["items"]
        }
        assert names == {"forecast", "temperature"}


async def test_imports_refuse_names_the_server_already_has(api: Any) -> None:
    clash = make_upstream("clash")
    async with run_upstream(make_upstream()) as host_url, run_upstream(clash) as source_url:
        await api.post(
            "/api/v1/servers",
            json={"name": "weather", "transport": "streamable-http", "url": host_url},
        )
        resp = await api.post(
            "/api/v1/servers/weather/sources", json={"name": "mirror", "url": source_url}
        )
        sid = resp.json()["id"]
        assert (await api.post(f"/api/v1/sources/{sid}/discover")).status_code == 200
        resp = await api.post(f"/api/v1/sources/{sid}/import")
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "CONFLICT"
        assert resp.json()["error"]["details"]["conflicts"] == ["forecast", "temperature"]


async def test_bad_sources_answer_4xx_with_field_details(api: Any) -> None:
    await api.post(
        "/api/v1/servers", json={"name": "files", "transport": "stdio", "command": "npx"}
    )
    cases = [
        ({"name": "x", "url": "http://169.254.169.254/"}, "url"),
        ({"name": "Bad Name", "url": "http://127.0.0.1:9/mcp"}, "name"),
        ({"name": "x", "url": "http://127.0.0.1:9/mcp", "transport": "stdio"}, "transport"),
        ({"name": "x", "url": "http://127.0.0.1:9/mcp", "headers": {"a b": "c"}}, "headers"),
        ({"url": "http://127.0.0.1:9/mcp"}, "name"),
    ]
    for body, field in cases:
        resp = await api.post("/api/v1/servers/files/sources", json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
        assert field in resp.json()["error"]["details"]["fields"]
    ok = {"name": "x", "url": "http://127.0.0.1:9/mcp"}
    resp = await api.post("/api/v1/servers/files/sources", json=ok)
    assert resp.status_code == 201
    dup = await api.post("/api/v1/servers/files/sources", json=ok)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "CONFLICT"
    sid = resp.json()["id"]
    resp = await api.put(f"/api/v1/sources/{sid}", json={"url": None})
    assert resp.status_code == 422 and "url" in resp.json()["error"]["details"]["fields"]
    resp = await api.put(f"/api/v1/sources/{sid}", json={"description": "old", "headers": {}})
    assert resp.status_code == 200 and resp.json()["description"] == "old"
    down = await api.post(f"/api/v1/sources/{sid}/discover")
    assert down.status_code == 200 and down.json()["status"] == "unhealthy"
    missing = await api.get("/api/v1/sources/not-a-uuid")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    assert (await api.get("/api/v1/servers/nope/sources")).status_code == 404


async def test_a_changed_source_url_is_checked_like_a_new_one(api: Any) -> None:
    await api.post(
        "/api/v1/servers", json={"name": "files", "transport": "stdio", "command": "npx"}
    )
    resp = await api.post(
        "/api/v1/servers/files/sources", json={"name": "ok", "url": "http://127.0.0.1:9/mcp"}
    )
    assert resp.status_code == 201, resp.text
    sid = resp.json()["id"]
    for url in ("http://2852039166/mcp", "http://[64:ff9b::a9fe:a9fe]/", "http://0x0a000001/"):
        resp = await api.put(f"/api/v1/sources/{sid}", json={"url": url})
        assert resp.status_code == 422, (url, resp.text)
        assert "url" in resp.json()["error"]["details"]["fields"]
    assert (await api.get(f"/api/v1/sources/{sid}")).json()["url"] == "http://127.0.0.1:9/mcp"
