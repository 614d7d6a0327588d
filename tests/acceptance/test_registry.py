"""The registry's REST API through nginx: servers, tools, secrets, health, settings, transfer."""

from __future__ import annotations

import asyncio
import secrets

import httpx

from tests.acceptance.platform_boot import Platform
from tests.acceptance.rest import Admin, expect, unique
from tests.acceptance.wire import register_http, wait_routed
from tests.e2e.gateway_support import list_tools, tool_names
from tests.support.upstreams import make_upstream, run_upstream


async def wait_unrouted(api: httpx.AsyncClient, key: str, tool: str, what: str) -> None:
    """Poll tools/list through nginx until the gateway no longer lists `tool`."""
    try:
        async with asyncio.timeout(15):
            while tool in tool_names(await list_tools(api, "", key)):
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"registry: {what}: the gateway still lists {tool}") from None


async def test_the_registry_manages_servers_tools_secrets_health_settings_and_transfers(
    platform: Platform, api: httpx.AsyncClient, admin: Admin
) -> None:
    name, imported = unique("reg"), unique("imp")
    auth = admin.headers
    async with run_upstream(make_upstream(name)) as url:
        created = await register_http(api, admin, name, url)
        assert (created["status"], created["tool_count"]) == ("healthy", 2), (
            f"registry: register a server (discovered healthy, two tools): {created}"
        )
        listed = expect(
            await api.get("/api/v1/servers", params={"q": name}, headers=auth), 200, "list"
        )
        assert [s["name"] for s in listed["items"]] == [name], "registry: list servers"
        details = expect(
            await api.get(f"/api/v1/servers/{name}/details", headers=auth),
            200,
            "registry: a server's details",
        )
        assert {t["name"] for t in details["tools"]} == {"temperature", "forecast"}, (
            f"registry: a server's details list its tools: {details['tools']}"
        )
        patched = expect(
            await api.patch(
                f"/api/v1/servers/{name}", json={"description": "Weather, tested"}, headers=auth
            ),
            200,
            "registry: update a server",
        )
        assert patched["description"] == "Weather, tested", "registry: the update is kept"

        tool = f"{name}__forecast"
        await wait_routed(api, admin.key, tool)
        base = f"/api/v1/servers/{name}/tools/forecast"
        expect(await api.post(f"{base}/disable", headers=auth), 200, "registry: disable a tool")
        await wait_unrouted(api, admin.key, tool, "a disabled tool")
        expect(await api.post(f"{base}/enable", headers=auth), 200, "registry: enable a tool")
        await wait_routed(api, admin.key, tool)
        off = {"enabled": False}
        toggle = f"/api/v1/servers/{name}/toggle"
        expect(await api.post(toggle, json=off, headers=auth), 200, "registry: disable a server")
        await wait_unrouted(api, admin.key, tool, "a disabled server")
        on = {"enabled": True}
        expect(await api.post(toggle, json=on, headers=auth), 200, "registry: enable a server")
        await wait_routed(api, admin.key, tool)

        value = secrets.token_urlsafe(16)
        secret = {"key": "X-Upstream-Token", "value": value, "kind": "header"}
        expect(
            await api.post(f"/api/v1/servers/{name}/secrets", json=secret, headers=auth),
            201,
            "registry: set a secret",
        )
        keys = await api.get(f"/api/v1/servers/{name}/secrets", headers=auth)
        assert [s["key"] for s in expect(keys, 200, "list secrets")["items"]] == [
            "X-Upstream-Token"
        ], "registry: a server's secrets are listed by key"
        assert value not in keys.text, "registry: secret values are never listed"
        masked = await api.get("/api/v1/export", params={"format": "generic"}, headers=auth)
        expect(masked, 200, "registry: export the servers")
        assert value not in masked.text, "registry: an export masks secret values"
        full = await api.get(
            "/api/v1/export",
            params={"format": "generic", "include_secrets": "true"},
            headers=auth,
        )
        exported = {s["name"]: s for s in expect(full, 200, "export with secrets")["servers"]}
        decrypted = exported[name]["headers"] == {"X-Upstream-Token": value}
        assert decrypted, "registry: an admin's export with secrets carries the decrypted value"
        expect(
            await api.delete(f"/api/v1/servers/{name}/secrets/X-Upstream-Token", headers=auth),
            204,
            "registry: delete a secret",
        )

        config = {
            "version": 1,
            "servers": [{"name": imported, "transport": "streamable-http", "url": url}],
        }
        dry = await api.post(
            "/api/v1/import", json={"config": config, "dry_run": True}, headers=auth
        )
        assert expect(dry, 200, "registry: import (dry run)")["created"] == [imported], (
            f"registry: a dry-run import names what it would create: {dry.text[:300]}"
        )
        expect(await api.post("/api/v1/import", json=config, headers=auth), 201, "registry: import")
        await wait_routed(api, admin.key, f"{imported}__temperature")

        checked = expect(
            await api.post(f"/api/v1/servers/{name}/refresh", headers=auth),
            200,
            "registry: check a server's health now",
        )
        assert checked["status"] == "healthy", f"registry: a live upstream is healthy: {checked}"
    checked = expect(
        await api.post(f"/api/v1/servers/{name}/refresh", headers=auth),
        200,
        "registry: check a server's health now",
    )
    assert checked["status"] == "unhealthy", f"registry: a stopped upstream is unhealthy: {checked}"

    model = unique("model")
    expect(
        await api.put("/api/v1/settings/llm_model", json={"value": model}, headers=auth),
        200,
        "registry: change a setting",
    )
    key = secrets.token_urlsafe(16)
    expect(
        await api.put("/api/v1/settings/llm_api_key", json={"value": key}, headers=auth),
        200,
        "registry: change a secret setting",
    )
    current = await api.get("/api/v1/settings", headers=auth)
    expect(current, 200, "registry: read the settings")
    assert model in current.text, "registry: a changed setting is read back"
    assert key not in current.text, "registry: secret settings are masked"

    for server in (name, imported):
        expect(
            await api.delete(f"/api/v1/servers/{server}", headers=auth),
            204,
            "registry: delete a server",
        )
        gone = await api.get(f"/api/v1/servers/{server}", headers=auth)
        assert gone.status_code == 404, f"registry: a deleted server is gone: {gone.status_code}"
