"""The catalog: MCPs, versions from git, tarballs and server.json, curation, tenancy, limits."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.common import events as ev
from libs.common import ssrf
from services.registry import catalog_sync
from services.registry.context import Registry
from tests.support.catalog import empty_catalog, git_repo, new_mcp, tarball
from tests.support.events import Events


@pytest.fixture(autouse=True)
async def clean_catalog(reg: Registry) -> AsyncIterator[None]:
    """Every test starts with an empty catalog."""
    await empty_catalog(reg.pool)
    yield


async def test_the_list_searches_pages_and_caps_the_limit(api: httpx.AsyncClient, anon) -> None:
    for i in range(3):
        await new_mcp(api, f"db-tools-{i}", description="Database access")
    await new_mcp(api, "weather", description="Forecasts")
    resp = await anon.get("/api/v1/mcps", params={"query": "database", "limit": 2, "offset": 1})
    body = resp.json()
    assert resp.status_code == 200
    assert body["total"] == 3 and body["limit"] == 2 and body["offset"] == 1
    assert [m["name"] for m in body["mcps"]] == ["db-tools-1", "db-tools-2"]
    assert body["mcps"][0]["latest_version"] is None
    alias = await anon.get("/api/v1/catalog", params={"q": "weather"})
    assert [m["name"] for m in alias.json()["items"]] == ["weather"]
    too_many = await anon.get("/api/v1/mcps", params={"limit": 101})
    assert too_many.status_code == 422
    assert too_many.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_a_git_version_is_named_by_commit_and_date_and_enqueues_one_scan(
    api: httpx.AsyncClient, anon, tmp_path: Path, events: Events
) -> None:
    sha = git_repo(tmp_path / "repo")
    mcp = await new_mcp(api, "gitty", repo_url=f"file://{tmp_path / 'repo'}")
    resp = await api.post(
        f"/api/v1/mcps/{mcp['id']}/versions", json={"source": "git", "ref": "main"}
    )
    assert resp.status_code == 201, resp.text
    version = resp.json()
    assert version["visible_version"] == f"commit-{sha[:7]}-2026-01-14"
    assert version["commit"] == sha and version["status"] == "PENDING"
    assert version["file_count"] == 2
    again = await api.post(f"/api/v1/mcps/{mcp['id']}/versions", json={"source": "git"})
    assert again.status_code == 409
    await events.wait_for(lambda e: e.type == ev.SCAN_REQUESTED.name)
    await events.wait_for(lambda e: e.type == ev.VERSION_CREATED.name)
    scans = [e for e in events.items if e.type == ev.SCAN_REQUESTED.name]
    created = [e for e in events.items if e.type == ev.VERSION_CREATED.name]
    assert [e.data["version_id"] for e in scans] == [str(version["id"])]
    assert [e.data["version_id"] for e in created] == [str(version["id"])]
    tar = await anon.get(version["tarball_url"])
    assert tar.headers["content-type"] == "application/gzip"
    assert hashlib.sha256(tar.content).hexdigest() == version["sha256"]
    detail = (await anon.get("/api/v1/mcps/gitty")).json()
    assert detail["latest_version"]["id"] == version["id"]


async def test_a_disallowed_git_host_is_refused(api: httpx.AsyncClient) -> None:
    mcp = await new_mcp(api, "remote")
    resp = await api.post(
        f"/api/v1/mcps/{mcp['id']}/versions",
        json={"source": "git", "url": "https://evil.example.com/x.git"},
    )
    assert resp.status_code == 422
    assert "url" in resp.json()["error"]["details"]["fields"]


async def test_tarball_versions_list_newest_first(api: httpx.AsyncClient, anon) -> None:
    mcp = await new_mcp(api, "tarry")
    url = f"/api/v1/mcps/{mcp['id']}/versions"
    first = await api.post(url, content=tarball({"a.py": b"1"}),
                           headers={"Content-Type": "application/gzip"})  # fmt: skip
    assert first.status_code == 201, first.text
    assert first.json()["visible_version"].startswith("tarball-" + first.json()["sha256"][:7])
    files = {"file": ("src.tar.gz", tarball({"b.py": b"2"}), "application/gzip")}
    second = await api.post(url, files=files, data={"version": "1.0.0"})
    assert second.status_code == 201, second.text
    listed = (await anon.get(url)).json()
    assert [v["visible_version"] for v in listed["versions"]] == [
        "1.0.0",
        first.json()["visible_version"],
    ]
    one = await anon.get(f"{url}/1.0.0")
    assert one.json()["id"] == second.json()["id"]


@pytest.mark.parametrize(
    "archive",
    [
        tarball({"../evil.py": b"x"}),
        tarball({"/etc/passwd": b"x"}),
        tarball({"ok.py": b"x"}, links={"out": "../../etc/passwd"}),
    ],
    ids=["zip-slip", "absolute", "symlink-out"],
)
async def test_unsafe_tarballs_are_refused_and_store_nothing(
    api: httpx.AsyncClient, reg: Registry, archive: bytes
) -> None:
    mcp = await new_mcp(api, "unsafe")
    resp = await api.post(f"/api/v1/mcps/{mcp['id']}/versions", content=archive,
                          headers={"Content-Type": "application/gzip"})  # fmt: skip
    assert resp.status_code == 422
    async with reg.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM registry.mcp_versions") == 0


async def test_a_server_json_updates_the_mcp_and_is_read_back_by_a_registry_client(
    api: httpx.AsyncClient, registry_url: str
) -> None:
    mcp = await new_mcp(api, "io.github.demo/weather")
    remote = {"type": "streamable-http", "url": "https://weather.example.com/mcp"}
    doc = {"name": "io.github.demo/weather", "description": "Weather tools", "version": "1.2.0",
           "remotes": [remote]}  # fmt: skip
    resp = await api.post(f"/api/v1/mcps/{mcp['id']}/versions", json={"server_json": doc})
    assert resp.status_code == 201, resp.text
    assert resp.json()["visible_version"] == "1.2.0"
    detail = (await api.get(f"/api/v1/mcps/{mcp['id']}")).json()
    assert detail["description"] == "Weather tools"
    loopback = ssrf.parse_networks(["127.0.0.0/8"])
    kind, items = await catalog_sync.fetch(
        f"{registry_url}/v0.1/servers", None, "auto", loopback, 5
    )
    assert kind == "mcp-registry"
    assert [(i["name"], i["url"]) for i in items] == [
        ("weather", "https://weather.example.com/mcp")
    ]
    one = await api.get("/v0.1/servers/io.github.demo%2Fweather/versions/latest")
    assert one.status_code == 200
    meta = one.json()["_meta"]["io.modelcontextprotocol.registry/official"]
    assert one.json()["server"]["version"] == "1.2.0" and meta["isLatest"] is True


async def test_another_orgs_private_mcp_is_absent_and_answers_404(
    api: httpx.AsyncClient, auth: Any, registry_url: str
) -> None:
    org = await auth.create_org()
    other = await auth.create_org()
    user = await auth.create_user()
    await auth.add_org_member(org["id"], user, "admin")
    token = (await auth.login(user.username, user.password))["access_token"]
    private = await api.post("/api/v1/mcps", json={"name": "secret", "org": other["id"]})
    assert private.status_code == 201 and private.json()["visibility"] == "private"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=registry_url, headers=headers) as alice:
        mine = await alice.post("/api/v1/mcps", json={"name": "mine"})
        assert mine.status_code == 201, mine.text
        public = await alice.post("/api/v1/mcps", json={"name": "loud", "visibility": "public"})
        assert public.status_code == 403
        names = [m["name"] for m in (await alice.get("/api/v1/mcps")).json()["mcps"]]
        assert names == ["mine"]
        assert (await alice.get(f"/api/v1/mcps/{private.json()['id']}")).status_code == 404
        assert (await alice.delete(f"/api/v1/mcps/{private.json()['id']}")).status_code == 404


async def test_admins_curate_categories_tags_and_featured(api: httpx.AsyncClient, anon) -> None:
    cat = await api.post("/api/v1/admin/categories", json={"slug": "data", "name": "Data"})
    assert cat.status_code == 201
    assert (
        await api.post("/api/v1/admin/categories", json={"slug": "data", "name": "D"})
    ).status_code == 409
    assert (
        await api.post("/api/v1/admin/tags", json={"slug": "sql", "name": "SQL"})
    ).status_code == 201
    mcp = await new_mcp(api, "pg")
    base = f"/api/v1/admin/mcps/{mcp['id']}"
    assert (await api.patch(f"{base}/category", json={"category": "data"})).status_code == 200
    assert (await api.patch(f"{base}/tags", json={"tags": ["sql"]})).status_code == 200
    assert (await api.post(f"{base}/featured", json={"featured": True})).status_code == 200
    found = (
        await anon.get(
            "/api/v1/mcps", params={"category": "data", "tag": "sql", "featured": "true"}
        )
    ).json()
    assert [m["name"] for m in found["mcps"]] == ["pg"]
    assert found["mcps"][0]["category"]["slug"] == "data" and found["mcps"][0]["tags"] == ["sql"]
    bad = await api.patch(f"{base}/tags", json={"tags": ["nope"]})
    assert bad.status_code == 422
    listed = await api.get("/api/v1/admin/mcps", params={"visibility": "public"})
    assert listed.json()["total"] == 1
    assert (await api.delete(f"/api/v1/admin/categories/{cat.json()['id']}")).status_code == 204
    assert (await api.delete(base)).status_code == 204
    assert (await api.get(base)).status_code == 404


async def test_anonymous_callers_get_15_requests_a_minute(api: httpx.AsyncClient, anon) -> None:
    statuses = []
    for _ in range(15):
        resp = await anon.get("/api/v1/mcps")
        statuses.append(resp.status_code)
        assert "X-RateLimit-Remaining" in resp.headers
    assert statuses == [200] * 15
    refused = await anon.get("/api/v1/mcps/anything")
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await api.get("/api/v1/mcps")).status_code == 200
