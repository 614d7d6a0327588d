"""The mcphubs and MCPBox seeds' own requests against the registry: disabled tools, one export."""

from __future__ import annotations

from typing import Any

from tests.support.upstreams import make_upstream, run_upstream


async def test_the_mcphubs_disabled_tools_body_is_accepted_and_answered_in_its_shape(
    api: Any,
) -> None:
    async with run_upstream(make_upstream()) as url:
        body = {"name": "weather", "transport": "streamable-http", "url": url}
        assert (await api.post("/api/v1/servers", json=body)).status_code == 201
    resp = await api.put(
        "/api/v1/servers/weather/disabled-tools", json={"disabled_tools": ["forecast"]}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["disabled_tools"] == ["forecast"] and resp.json()["tools"] == ["forecast"]
    listing = (await api.get("/api/v1/servers/weather/tools")).json()
    assert {t["name"]: t["disabled"] for t in listing["items"]} == {
        "temperature": False,
        "forecast": True,
    }
    assert (await api.get("/api/v1/servers/weather/disabled-tools")).json()["disabled_tools"] == [
        "forecast"
    ]
    both = await api.put(
        "/api/v1/servers/weather/disabled-tools", json={"tools": [], "disabled_tools": []}
    )
    assert both.status_code == 422 and both.json()["error"]["code"] == "VALIDATION_ERROR"
    wrong = await api.put("/api/v1/servers/weather/disabled-tools", json={"disabled_tools": "x"})
    assert wrong.status_code == 422
    assert (await api.get("/api/v1/servers/weather/disabled-tools")).json()["tools"] == ["forecast"]


async def test_one_server_is_exported_in_the_whole_exports_format(api: Any) -> None:
    for name in ("files", "other"):
        body = {"name": name, "transport": "stdio", "command": "npx", "env": {"TOKEN": "s3cr3t"}}
        assert (await api.post("/api/v1/servers", json=body)).status_code == 201
    whole = (await api.get("/api/v1/export/servers", params={"format": "claude"})).json()
    created = (await api.get("/api/v1/servers/files")).json()
    one = await api.get(f"/api/v1/export/servers/{created['id']}", params={"format": "claude"})
    assert one.status_code == 200, one.text
    assert one.json() == {"mcpServers": {"files": whole["mcpServers"]["files"]}}
    assert "s3cr3t" not in one.text
    generic = (await api.get("/api/v1/export/servers/files")).json()
    assert [s["name"] for s in generic["servers"]] == ["files"]
    revealed = await api.get("/api/v1/export/servers/files", params={"include_secrets": "true"})
    assert revealed.json()["servers"][0]["env"] == {"TOKEN": "s3cr3t"}
    missing = await api.get("/api/v1/export/servers/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    code = await api.get("/api/v1/export/servers/code", params={"format": "claude"})
    assert code.status_code == 404  # a code server travels as code tools, in generic only
    bad = await api.get("/api/v1/export/servers/files", params={"format": "yaml"})
    assert bad.status_code == 422


async def test_the_registry_heartbeat_carries_its_server_and_tool_counts(
    api: Any, events: Any
) -> None:
    async with run_upstream(make_upstream()) as url:
        body = {"name": "weather", "transport": "streamable-http", "url": url}
        assert (await api.post("/api/v1/servers", json=body)).status_code == 201
    put = await api.put("/api/v1/settings/exposure_mode", json={"value": "progressive"})
    assert put.status_code == 200
    total = (await api.get("/api/v1/servers")).json()["total"]
    beat = await events.wait_for(
        lambda e: (
            e.type == "registry.service.heartbeat"
            and (e.data.get("stats") or {}).get("exposure_mode") == "progressive"
        ),
        timeout=15,
    )
    assert beat.data["stats"]["servers_count"] == total
    assert beat.data["stats"]["total_tools"] == 2
    assert beat.data["stats"]["memory_total_mb"] > 0


MCPHUB_CONFIG = {  # the mcphub seed's PUT /api/config body, as it writes it
    "smtp": {
        "host": "smtp.example.com",
        "port": 587,
        "secure": False,
        "auth": {"user": "noreply@example.com", "pass": "password"},
    },
    "notifications": {
        "email": True,
        "slack": True,
        "webhook": "https://hooks.example.com/notifications",
    },
}


async def test_the_mcphub_config_body_sets_smtp_and_notifications_at_once(
    api: Any, events: Any
) -> None:
    resp = await api.put("/api/v1/config", json=MCPHUB_CONFIG)
    assert resp.status_code == 200, resp.text
    assert "password" not in resp.text.replace("smtp_password", "")
    got = (await api.get("/api/v1/settings")).json()["settings"]
    assert got["smtp"] == {
        "host": "smtp.example.com",
        "port": 587,
        "tls": "starttls",
        "secure": False,
        "from": "noreply@example.com",
        "username": "noreply@example.com",
    }
    assert got["smtp_password"] == "********"
    assert got["notifications"] == MCPHUB_CONFIG["notifications"]
    assert (await api.get("/api/v1/config")).json()["settings"] == got
    sealed = await events.wait_for(
        lambda e: e.type == "registry.settings.updated" and e.data["key"] == "smtp_password"
    )
    assert sealed.data["value"] is None and sealed.data["secret"] is True
    several = await api.put(
        "/api/v1/settings", json={"exposure_mode": "progressive", "llm_model": "m1"}
    )
    assert several.status_code == 200
    got = (await api.get("/api/v1/settings")).json()["settings"]
    assert (got["exposure_mode"], got["llm_model"]) == ("progressive", "m1")


async def test_several_settings_are_all_or_nothing_with_each_bad_key_named(api: Any) -> None:
    bad = await api.put(
        "/api/v1/settings",
        json={
            "exposure_mode": "all",
            "smtp": {"host": "smtp.example.com", "port": 70000, "tls": "starttls"},
            "notifications": {"webhook": "ftp://x"},
            "nope": 1,
        },
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "VALIDATION_ERROR"
    assert set(bad.json()["error"]["details"]["fields"]) == {"smtp", "notifications", "nope"}
    got = (await api.get("/api/v1/settings")).json()["settings"]
    assert got["smtp"] is None and got["notifications"] is None
    one = await api.put(
        "/api/v1/settings/smtp",
        json={"value": {"host": "mail.example.com", "port": 465, "tls": "tls", "password": "pw"}},
    )
    assert one.status_code == 200 and one.json()["value"]["secure"] is True
    assert "pw" not in (await api.get("/api/v1/settings")).text
    assert (await api.put("/api/v1/settings", json=[1])).status_code == 422
    assert (await api.put("/api/v1/settings/smtp", json={"value": "x"})).status_code == 422


async def test_the_gateway_registry_pages_list_and_edit_servers_escaped(
    api: Any, registry_url: str
) -> None:
    import httpx

    body = {
        "name": "weather",
        "transport": "streamable-http",
        "url": "http://127.0.0.1:9/mcp",
        "description": "<script>alert(1)</script>",
        "tags": ["weather"],
        "license": "MIT",
    }
    assert (await api.post("/api/v1/servers", json=body)).status_code == 201
    home = await api.get("/")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    assert 'href="/edit/weather"' in home.text
    page = await api.get("/edit/weather")
    assert page.status_code == 200
    assert 'name="proxy_pass_url" value="http://127.0.0.1:9/mcp"' in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert" not in page.text
    assert 'fetch("/api/v1/servers/" + "' in page.text and "X-CSRF-Token" in page.text
    # what the page's form sends
    saved = await api.patch(
        f"/api/v1/servers/{(await api.get('/api/v1/servers/weather')).json()['id']}",
        json={
            "display_name": "Weather API",
            "description": "Updated",
            "tags": ["a", "b"],
            "stars": 5,
            "is_python": True,
            "license": "MIT",
        },  # fmt: skip
    )
    assert saved.status_code == 200, saved.text
    assert "Weather API" in (await api.get("/")).text
    assert (await api.get("/edit/nope")).status_code == 404
    async with httpx.AsyncClient(base_url=registry_url) as anonymous:
        for path in ("/", "/edit/weather"):
            resp = await anonymous.get(path)
            assert resp.status_code == 303
            assert resp.headers["location"].startswith("/api/v1/auth/login-form?next=/")
