"""The /v0.1 subregistry's list: cursor paging to the end, updated_since, search and limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.registry.context import Registry
from tests.support.catalog import empty_catalog, new_mcp

OFFICIAL = "io.modelcontextprotocol.registry/official"
# name → its versions, oldest first
CATALOG = {
    "io.github.acme/weather": ["1.0.0", "1.1.0", "2.0.0"],
    "io.github.acme/weather-alerts": ["0.1.0"],
    "io.github.beta/db": ["1.0.0", "1.0.1"],
    "io.github.beta/files": ["3.0.0"],
    "io.github.gamma/search": ["0.9.0", "1.0.0"],
}


@pytest.fixture(autouse=True)
async def clean_catalog(reg: Registry) -> AsyncIterator[None]:
    """Every test starts with an empty catalog."""
    await empty_catalog(reg.pool)
    yield


async def publish(api: httpx.AsyncClient, catalog: dict[str, list[str]]) -> None:
    """Each MCP with its versions, given as server.json documents."""
    for name, versions in catalog.items():
        mcp = await new_mcp(api, name)
        for version in versions:
            doc = {"name": name, "description": f"{name} tools", "version": version}
            resp = await api.post(f"/api/v1/mcps/{mcp['id']}/versions", json={"server_json": doc})
            assert resp.status_code == 201, resp.text


async def every_page(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    """Follow metadata.nextCursor until it is absent; the pages' bodies in order."""
    pages = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/v0.1/servers", params=query)
        assert resp.status_code == 200, resp.text
        pages.append(resp.json())
        cursor = resp.json()["metadata"].get("nextCursor")
        if cursor is None:
            return pages
        assert len(pages) < 20, "the cursor never ran out"


def entries(pages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(name, version) of every server in the pages, in order."""
    return [(s["server"]["name"], s["server"]["version"]) for p in pages for s in p["servers"]]


async def test_cursor_paging_returns_every_version_once_then_stops(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await publish(api, CATALOG)
    pages = await every_page(anon, limit=2)
    expected = {(name, v) for name, versions in CATALOG.items() for v in versions}
    seen = entries(pages)
    assert len(seen) == len(set(seen)) == len(expected) == 9
    assert set(seen) == expected
    assert [p["metadata"]["count"] for p in pages] == [2, 2, 2, 2, 1]
    assert all(len(p["servers"]) == p["metadata"]["count"] for p in pages)
    assert "nextCursor" not in pages[-1]["metadata"]
    names = [name for name, _ in seen]
    # by name, bytewise: one server's versions are never split by another's
    assert names == sorted(names)
    whole = await anon.get("/v0.1/servers", params={"limit": 100})
    assert entries([whole.json()]) == seen and "nextCursor" not in whole.json()["metadata"]


async def test_latest_only_pages_one_entry_per_server(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await publish(api, CATALOG)
    pages = await every_page(anon, limit=2, version="latest")
    assert dict(entries(pages)) == {name: versions[-1] for name, versions in CATALOG.items()}
    assert len(entries(pages)) == len(CATALOG)
    assert all(s["_meta"][OFFICIAL]["isLatest"] for p in pages for s in p["servers"])


async def test_updated_since_keeps_only_servers_changed_after_it(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, reg: Registry
) -> None:
    await publish(api, CATALOG)
    async with reg.pool.acquire() as conn:
        await conn.execute(
            "UPDATE registry.mcps SET updated_at = '2025-01-01T00:00:00Z'"
            " WHERE name LIKE 'io.github.beta/%'"
        )
    recent = await every_page(anon, limit=3, updated_since="2025-06-01T00:00:00Z")
    assert {name for name, _ in entries(recent)} == {
        "io.github.acme/weather",
        "io.github.acme/weather-alerts",
        "io.github.gamma/search",
    }
    assert len(entries(recent)) == 6
    everything = await anon.get(
        "/v0.1/servers", params={"updated_since": "2024-12-31T00:00:00+00:00", "limit": 100}
    )
    assert len(everything.json()["servers"]) == 9
    bad = await anon.get("/v0.1/servers", params={"updated_since": "yesterday"})
    assert bad.status_code == 422
    assert list(bad.json()["error"]["details"]["fields"]) == ["updated_since"]


async def test_search_matches_names_case_insensitively_across_pages(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await publish(api, CATALOG)
    pages = await every_page(anon, limit=1, search="WEATHER")
    seen = entries(pages)
    assert [name for name, _ in seen] == ["io.github.acme/weather"] * 3 + [
        "io.github.acme/weather-alerts"
    ]
    assert sorted(v for _, v in seen[:3]) == CATALOG["io.github.acme/weather"]
    assert len(pages) == 4
    none = await anon.get("/v0.1/servers", params={"search": "nothing-like-it"})
    assert none.json() == {"servers": [], "metadata": {"count": 0}}


async def test_private_mcps_are_not_listed_to_anonymous_callers(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    await publish(api, {"io.github.acme/open": ["1.0.0"]})
    hidden = await api.post("/api/v1/mcps", json={"name": "io.github.acme/hidden"})
    doc = {"name": "io.github.acme/hidden", "version": "1.0.0"}
    added = await api.post(
        f"/api/v1/mcps/{hidden.json()['id']}/versions", json={"server_json": doc}
    )
    assert added.status_code == 201
    listed = await every_page(anon, limit=1)
    assert entries(listed) == [("io.github.acme/open", "1.0.0")]
    one = await anon.get("/v0.1/servers/io.github.acme%2Fhidden/versions")
    assert one.status_code == 404


@pytest.mark.parametrize("limit", ["0", "101", "ten", "-1"])
async def test_a_limit_outside_1_to_100_is_a_422(anon: httpx.AsyncClient, limit: str) -> None:
    resp = await anon.get("/v0.1/servers", params={"limit": limit})
    assert resp.status_code == 422
    assert list(resp.json()["error"]["details"]["fields"]) == ["limit"]


@pytest.mark.parametrize("cursor", ["nonsense", "io.github.acme/weather:not-a-uuid"])
async def test_a_cursor_this_list_did_not_give_is_a_422(
    anon: httpx.AsyncClient, cursor: str
) -> None:
    resp = await anon.get("/v0.1/servers", params={"cursor": cursor})
    assert resp.status_code == 422
    assert list(resp.json()["error"]["details"]["fields"]) == ["cursor"]
