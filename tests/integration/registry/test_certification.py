"""Servers linked to catalog versions: the link, their certification, tools held to the snapshot.

`certification` shows in views and the snapshot, and announce() tells of a new snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from libs.common import events as ev
from services.registry import certification
from services.registry.context import Registry
from tests.integration.registry.conftest import make_upstream, run_upstream
from tests.support.catalog import add_snapshot, empty_catalog, insert_version, sha256
from tests.support.events import Events

# what make_upstream's tools say of themselves
TEMPERATURE = "Current temperature in a city."
FORECAST = "Forecast for the next days."


@pytest.fixture(autouse=True)
async def no_catalog(reg: Registry) -> AsyncIterator[None]:
    """Every test starts without MCPs and policies."""
    await empty_catalog(reg.pool)
    yield


def server(name: str, url: str, **fields: Any) -> dict[str, Any]:
    """A streamable HTTP server body."""
    return {"name": name, "transport": "streamable-http", "url": url, **fields}


async def test_a_server_links_a_version_by_name_and_shows_its_certification(
    api: httpx.AsyncClient, reg: Registry
) -> None:
    version = await insert_version(reg.pool, "mcp-weather", score=42, failed=("SEC-001",))
    link = {"mcp": "mcp-weather", "version": version.visible_version}
    body = server("linked", "http://127.0.0.1:9/mcp", enabled=False, catalog_version=link)
    resp = await api.post("/api/v1/servers", json=body)
    assert resp.status_code == 201, resp.text
    cert = resp.json()["certification"]
    assert cert["version_id"] == str(version.version_id)
    assert cert["global_score"] == 42
    assert cert["failed_controls"] == ["SEC-001"]
    assert cert["license"] == "MIT"
    listed = (await api.get("/api/v1/servers")).json()["items"]
    assert next(s for s in listed if s["name"] == "linked")["certification"] == cert
    unlinked = await api.patch("/api/v1/servers/linked", json={"catalog_version": None})
    assert unlinked.json()["certification"] is None
    by_id = await api.patch(
        "/api/v1/servers/linked", json={"catalog_version": str(version.version_id)}
    )
    assert by_id.json()["certification"]["mcp"] == "mcp-weather"


async def test_an_unknown_or_foreign_private_version_is_422(
    api: httpx.AsyncClient, reg: Registry, auth: Any
) -> None:
    other = await auth.create_org()
    theirs = await insert_version(reg.pool, "theirs", org=other["id"], visibility="private")
    mine = await auth.create_org()
    for link in ({"mcp": "nothing"}, "not-a-uuid", str(theirs.version_id)):
        body = server("bad", "http://127.0.0.1:9/mcp", enabled=False, catalog_version=link,
                      org=mine["id"])  # fmt: skip
        resp = await api.post("/api/v1/servers", json=body)
        assert resp.status_code == 422, link
        assert "catalog_version" in resp.json()["error"]["details"]["fields"]
    assert (await api.get("/api/v1/servers/bad")).status_code == 404


async def test_the_snapshot_carries_the_certification(
    api: httpx.AsyncClient, reg: Registry
) -> None:
    version = await insert_version(reg.pool, "mcp-weather", score=None)
    body = server("unscanned", "http://127.0.0.1:9/mcp", enabled=False,
                  catalog_version={"mcp": "mcp-weather"})  # fmt: skip
    await api.post("/api/v1/servers", json=body)
    snap = await reg.bus.request("rpc.registry.snapshot", {"names": ["unscanned"]})
    cert = snap["servers"][0]["certification"]
    assert cert["version_id"] == str(version.version_id)
    assert cert["global_score"] is None


async def test_a_new_snapshot_is_announced_on_the_linked_servers(
    api: httpx.AsyncClient, reg: Registry, events: Events
) -> None:
    version = await insert_version(reg.pool, "mcp-weather", score=50)
    body = server("announced", "http://127.0.0.1:9/mcp", enabled=False,
                  catalog_version=str(version.version_id))  # fmt: skip
    before = (await api.post("/api/v1/servers", json=body)).json()
    async with reg.pool.acquire() as conn, conn.transaction():
        await add_snapshot(conn, version.version_id, 91)
        assert await certification.announce(reg, conn, version.version_id) == 1
    event = await events.wait_for(
        lambda e: e.type == ev.SERVER_UPDATED.name and e.data["server"] == "announced"
    )
    assert event.data["changed"] == ["certification"]
    after = (await api.get("/api/v1/servers/announced")).json()
    assert after["version"] > before["version"]
    assert after["certification"]["global_score"] == 91


async def test_a_tool_the_snapshot_describes_otherwise_is_quarantined(
    api: httpx.AsyncClient, reg: Registry
) -> None:
    tools = [
        {"name": "temperature", "description_sha256": sha256(TEMPERATURE)},
        {"name": "forecast", "description_sha256": sha256("Old text.")},
    ]
    version = await insert_version(reg.pool, "mcp-weather", tools=tools)
    async with run_upstream(make_upstream()) as url:
        body = server("certified", url, catalog_version=str(version.version_id))
        assert (await api.post("/api/v1/servers", json=body)).status_code == 201
        details = (await api.get("/api/v1/servers/certified/details")).json()
    by_name = {t["name"]: t for t in details["tools"]}
    assert by_name["temperature"]["routable"] is True
    assert by_name["forecast"]["quarantined"] is True
    assert certification.MISMATCH in by_name["forecast"]["flags"]
    snap = await reg.bus.request("rpc.registry.snapshot", {"names": ["certified"]})
    routable = {t["name"]: t["routable"] for t in snap["servers"][0]["tools"]}
    assert routable == {"temperature": True, "forecast": False}


async def test_an_admin_approval_overrides_the_mismatch(
    api: httpx.AsyncClient, reg: Registry
) -> None:
    tools = [{"name": "temperature", "description_sha256": sha256(TEMPERATURE)}]
    version = await insert_version(reg.pool, "mcp-weather", tools=tools)
    async with run_upstream(make_upstream()) as url:
        body = server("overridden", url, catalog_version=str(version.version_id))
        await api.post("/api/v1/servers", json=body)
        approved = await api.post("/api/v1/servers/overridden/tools/forecast/approve")
        assert approved.status_code == 200, approved.text
        await api.post("/api/v1/servers/overridden/refresh")
        details = (await api.get("/api/v1/servers/overridden/details")).json()
    assert {t["name"]: t["routable"] for t in details["tools"]} == {
        "temperature": True,
        "forecast": True,
    }


async def test_tools_already_stored_are_held_when_linked_and_when_a_new_snapshot_differs(
    api: httpx.AsyncClient, reg: Registry, events: Events
) -> None:
    both = [
        {"name": "temperature", "description_sha256": sha256(TEMPERATURE)},
        {"name": "forecast", "description_sha256": sha256(FORECAST)},
    ]
    wrong = [both[0], {"name": "forecast", "description_sha256": sha256("Old text.")}]
    version = await insert_version(reg.pool, "mcp-weather", tools=wrong)
    async with run_upstream(make_upstream()) as url:
        resp = await api.post("/api/v1/servers", json=server("later", url))
        assert resp.status_code == 201, resp.text

        async def states() -> dict[str, bool]:
            details = (await api.get("/api/v1/servers/later/details")).json()
            return {t["name"]: t["routable"] for t in details["tools"]}

        assert await states() == {"temperature": True, "forecast": True}
        # linked after discovery: the stored forecast is held to the snapshot at once
        linked = await api.patch(
            "/api/v1/servers/later", json={"catalog_version": str(version.version_id)}
        )
        assert linked.status_code == 200, linked.text
        assert await states() == {"temperature": True, "forecast": False}
        event = await events.wait_for(
            lambda e: (
                e.type == ev.SERVER_UPDATED.name
                and e.data["server"] == "later"
                and "certification" not in e.data["changed"]
                and "catalog_version" in e.data["changed"]
            )
        )
        assert [(c["tool"], c["change"]) for c in event.data["tool_changes"]] == [
            ("forecast", "quarantined")
        ]
        # the admin approves it; a new snapshot that describes temperature otherwise holds that
        approved = await api.post("/api/v1/servers/later/tools/forecast/approve")
        assert approved.status_code == 200, approved.text
        changed = [{"name": "temperature", "description_sha256": sha256("Other.")}, both[1]]
        async with reg.pool.acquire() as conn, conn.transaction():
            await add_snapshot(conn, version.version_id, 90, tools=changed)
            await certification.announce(reg, conn, version.version_id)
        assert await states() == {"temperature": False, "forecast": True}
