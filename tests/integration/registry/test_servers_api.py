"""The servers and tools REST API as the platform admin, against real upstream MCP servers."""

from __future__ import annotations

from typing import Any

from libs.common import rpc
from services.registry.context import Registry
from tests.support.upstreams import make_upstream, run_upstream


def remote(name: str, url: str, **extra: Any) -> dict[str, Any]:
    """A remote server body."""
    return {"name": name, "transport": "streamable-http", "url": url, **extra}


async def test_registering_a_server_discovers_its_tools_with_schemas(api: Any) -> None:
    async with run_upstream(make_upstream()) as url:
        resp = await api.post("/api/v1/servers", json=remote("weather", url, tags=["demo"]))
        assert resp.status_code == 201, resp.text
        assert resp.json()["status"] == "healthy"
        assert resp.json()["tool_count"] == 2
        tools = (await api.get("/api/v1/servers/weather/tools")).json()
        listed = (await api.get("/api/v1/servers", params={"tag": "demo"})).json()
        details = (await api.get("/api/v1/servers/weather/details")).json()
    by_name = {t["name"]: t for t in tools["items"]}
    assert by_name["temperature"]["input_schema"]["required"] == ["city"]
    assert by_name["temperature"]["routable"] is True
    assert listed["total"] == 1 and listed["items"][0]["name"] == "weather"
    assert details["resources"][0]["uri"] == "weather://stations"
    assert len(details["tools"]) == 2


async def test_registering_a_taken_name_answers_conflict(api: Any) -> None:
    body = {"name": "files", "transport": "stdio", "command": "npx"}
    assert (await api.post("/api/v1/servers", json=body)).status_code == 201
    resp = await api.post("/api/v1/servers", json=body)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "CONFLICT"


async def test_bad_bodies_answer_4xx_with_field_details_and_change_nothing(api: Any) -> None:
    cases = [
        ({"transport": "stdio", "command": "x"}, "name"),
        ({"name": "Bad Name!", "transport": "stdio", "command": "x"}, "name"),
        ({"name": "a", "transport": "carrier-pigeon", "command": "x"}, "transport"),
        ({"name": "a", "transport": "sse"}, "url"),
        ({"name": "a", "transport": "stdio"}, "command"),
        ({"name": "a", "transport": "stdio", "command": "x", "timeout_s": -1}, "timeout_s"),
        ({"name": "a", "transport": "stdio", "command": "x", "surprise": 1}, "surprise"),
        ({"name": "a", "transport": "stdio", "command": "x", "env": {"A": "b\nc"}}, "env"),
        ({"name": "a", "transport": "sse", "url": "ftp://example.com/x"}, "url"),
    ]
    for body, field in cases:
        resp = await api.post("/api/v1/servers", json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
        assert any(k.startswith(field) for k in resp.json()["error"]["details"]["fields"]), body
    resp = await api.post(
        "/api/v1/servers", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400
    assert (await api.get("/api/v1/servers", params={"sort": "password"})).status_code == 422
    assert (await api.get("/api/v1/servers")).json()["total"] == 1  # only the built-in code server


async def test_ssrf_targets_are_refused(api: Any) -> None:
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/mcp",
        "http://10.1.2.3/mcp",
        "http://metadata.google.internal/",
        "http://0.0.0.0:80/",
    ]:
        resp = await api.post("/api/v1/servers", json=remote("evil", url))
        assert resp.status_code == 422, url
        assert "url" in resp.json()["error"]["details"]["fields"]
    resp = await api.put("/api/v1/settings/ssrf_allowlist", json={"value": []})
    assert resp.status_code == 200
    for url in ["http://localhost:8080/mcp", "http://127.0.0.1:8080/mcp"]:
        resp = await api.post("/api/v1/servers", json=remote("evil", url))
        assert resp.status_code == 422, url


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time(
    api: Any, reg: Registry
) -> None:
    async with run_upstream(make_upstream()) as url:
        resp = await api.post("/api/v1/servers", json=remote("weather", url))
        assert resp.json()["status"] == "healthy"
        await api.put("/api/v1/settings/ssrf_allowlist", json={"value": ["10.0.0.0/8"]})
        outcome = (await api.post("/api/v1/servers/weather/refresh")).json()
    assert outcome["status"] == "unhealthy"
    assert "SSRF" in outcome["error"]


async def test_secrets_are_masked_in_responses_and_absent_from_logs(
    api: Any, reg: Registry, capfd: Any
) -> None:
    async with run_upstream(make_upstream()) as url:
        body = remote("weather", url, headers={"Authorization": "Bearer top-s3cret-value"})
        created = (await api.post("/api/v1/servers", json=body)).json()
        put = await api.put(
            "/api/v1/servers/weather/secrets/API_TOKEN",
            json={"value": "env-s3cret-value", "kind": "env"},
        )
        assert put.status_code == 200
        shown = (await api.get("/api/v1/servers/weather")).text
        keys = (await api.get("/api/v1/servers/weather/secrets")).json()
        exported = (await api.get("/api/v1/export")).text
        snap = await reg.bus.request(rpc.REGISTRY_SNAPSHOT, {"names": ["weather"]})
    assert created["headers"] == {"Authorization": "********"}
    assert "s3cret" not in shown and "s3cret" not in exported
    assert {(k["kind"], k["key"]) for k in keys["items"]} == {
        ("header", "Authorization"),
        ("env", "API_TOKEN"),
    }
    assert "s3cret" not in str(keys)
    assert snap["servers"][0]["env"] == {"API_TOKEN": "env-s3cret-value"}
    out, err = capfd.readouterr()
    assert "s3cret" not in out + err


async def test_a_changed_tool_is_quarantined_with_a_diff_until_approved(api: Any) -> None:
    upstream = make_upstream()
    async with run_upstream(upstream) as url:
        await api.post("/api/v1/servers", json=remote("weather", url))
        upstream.remove_tool("temperature")
        upstream.add_tool(
            lambda city, unit="C": city,
            name="temperature",
            description="Current temperature in a city, in a unit.",
        )
        outcome = (await api.post("/api/v1/servers/weather/refresh")).json()
        assert outcome["changes"] == [
            {"tool": "temperature", "change": "quarantined", "state": "quarantined"}
        ]
        tool = (await api.get("/api/v1/servers/weather/tools/temperature")).json()
        assert tool["quarantined"] is True and tool["routable"] is False
        assert {"description", "input_schema"} <= set(tool["diff"])
        listed = (await api.get("/api/v1/tools", params={"state": "quarantined"})).json()
        assert [t["name"] for t in listed["items"]] == ["temperature"]
        resp = await api.post("/api/v1/servers/weather/tools/temperature/approve")
        assert resp.status_code == 200
        assert resp.json()["routable"] is True and resp.json()["state"] == "approved"
        again = (await api.post("/api/v1/servers/weather/refresh")).json()
    assert again["changes"] == []


async def test_disabled_tools_are_not_routable(api: Any, reg: Registry, events: Any) -> None:
    async with run_upstream(make_upstream()) as url:
        await api.post("/api/v1/servers", json=remote("weather", url))
    resp = await api.put("/api/v1/servers/weather/disabled-tools", json={"tools": ["forecast"]})
    assert resp.status_code == 200
    await events.wait_for(
        lambda e: e.type == "registry.tool.disabled" and e.data["tool"] == "forecast"
    )
    assert (await api.post("/api/v1/servers/weather/tools/temperature/disable")).json()[
        "disabled"
    ] is True
    assert (
        await api.patch("/api/v1/servers/weather/tools/forecast", json={"enabled": True})
    ).json()["routable"] is True
    snap = await reg.bus.request(rpc.REGISTRY_SNAPSHOT, {"names": ["weather"]})
    assert {t["name"]: t["routable"] for t in snap["servers"][0]["tools"]} == {
        "temperature": False,
        "forecast": True,
    }
    bad = await api.put("/api/v1/servers/weather/disabled-tools", json={"tools": "forecast"})
    assert bad.status_code == 422
    missing = await api.post("/api/v1/servers/weather/tools/nope/disable")
    assert missing.status_code == 404


async def test_toggle_update_and_delete_publish_events(api: Any, events: Any) -> None:
    await api.post(
        "/api/v1/servers", json={"name": "files", "transport": "stdio", "command": "npx"}
    )
    resp = await api.post("/api/v1/servers/files/toggle", json={"enabled": False})
    assert resp.status_code == 200 and resp.json()["enabled"] is False
    await events.wait_for(
        lambda e: (
            e.type == "registry.server.toggled"
            and e.data == {**e.data, "server": "files", "enabled": False}
        )
    )
    resp = await api.patch("/api/v1/servers/files", json={"description": "Files", "stars": 5})
    assert resp.json()["description"] == "Files" and resp.json()["stars"] == 5
    await events.wait_for(
        lambda e: e.type == "registry.server.updated" and "description" in e.data["changed"]
    )
    assert (await api.patch("/api/v1/servers/files", json={"url": "http://x"})).status_code == 422
    assert (await api.delete("/api/v1/servers/files")).status_code == 204
    await events.wait_for(lambda e: e.type == "registry.server.deleted")
    resp = await api.get("/api/v1/servers/files")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_FOUND"


async def test_settings_are_validated_and_secret_ones_masked(api: Any, events: Any) -> None:
    resp = await api.put("/api/v1/settings/llm_api_key", json={"value": "sk-s3cret"})
    assert resp.status_code == 200 and resp.json()["value"] == "********"
    event = await events.wait_for(lambda e: e.type == "registry.settings.updated")
    assert event.data["key"] == "llm_api_key" and event.data["value"] is None
    got = (await api.get("/api/v1/settings")).json()["settings"]
    assert got["llm_api_key"] == "********" and got["exposure_mode"] == "all"
    bad = await api.put("/api/v1/settings/exposure_mode", json={"value": "some"})
    assert bad.status_code == 422 and "value" in bad.json()["error"]["details"]["fields"]
    assert (
        await api.put("/api/v1/settings/ssrf_allowlist", json={"value": ["not-a-cidr"]})
    ).status_code == 422
    assert (await api.put("/api/v1/settings/nope", json={"value": 1})).status_code == 404
    ok = await api.put("/api/v1/settings/exposure_mode", json={"value": "progressive"})
    assert ok.json()["value"] == "progressive"


async def test_mcp_gateway_registry_fields_are_accepted_on_create_and_update(api: Any) -> None:
    body = {
        "name": "gw",
        "transport": "streamable-http",
        "proxy_pass_url": "http://127.0.0.1:9/mcp",
        "path": "gw-path",
        "num_stars": 12,
        "is_python": True,
        "license": "MIT",
        "enabled": False,
    }
    resp = await api.post("/api/v1/servers", json=body)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["url"] == out["proxy_pass_url"] == "http://127.0.0.1:9/mcp"
    assert (out["stars"], out["num_stars"], out["is_python"], out["license"]) == (
        12,
        12,
        True,
        "MIT",
    )
    assert out["path"] == "gw-path"
    resp = await api.patch("/api/v1/servers/gw", json={"num_stars": 13, "is_python": False})
    assert resp.status_code == 200 and resp.json()["num_stars"] == 13
    assert resp.json()["is_python"] is False
    clash = {"url": "http://127.0.0.1:9/a", "proxy_pass_url": "http://127.0.0.1:9/b"}
    resp = await api.patch("/api/v1/servers/gw", json=clash)
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "VALIDATION_ERROR"
    assert resp.json()["error"]["details"]["fields"]
    resp = await api.patch("/api/v1/servers/gw", json={"num_stars": -1})
    assert resp.status_code == 422 and "stars" in resp.json()["error"]["details"]["fields"]
