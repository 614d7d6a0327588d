"""Version uploads: bodies up to the catalog's limit, its limits through the API, bad sources."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from libs.devstack.harness import serving
from services.registry.app import create_app
from services.registry.context import Registry
from services.registry.settings import RegistrySettings
from tests.support.catalog import GZIP, empty_catalog, git_repo, new_mcp, stored_versions, tarball

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
async def clean_catalog(reg: Registry) -> AsyncIterator[None]:
    """Every test starts with an empty catalog."""
    await empty_catalog(reg.pool)
    yield


@pytest.fixture(scope="module")
async def small(
    registry_settings_: RegistrySettings, admin_token: str, registry_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A second registry replica whose catalog limits are tiny, as the platform admin."""
    settings = dataclasses.replace(
        registry_settings_,
        catalog_max_tarball_bytes=2048,
        catalog_max_files=3,
        catalog_max_unpacked_bytes=1000,
    )
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with (
        serving(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=20) as client,
    ):
        yield client


def versions_url(mcp: dict) -> str:
    """The upload route of an MCP."""
    return f"/api/v1/mcps/{mcp['id']}/versions"


async def test_a_6_mib_incompressible_tarball_is_accepted(api: httpx.AsyncClient) -> None:
    mcp = await new_mcp(api, "big")
    archive = tarball({"blob.bin": os.urandom(6 * MIB)})
    assert len(archive) > 6 * MIB  # over the 4 MiB platform cap
    raw = await api.post(versions_url(mcp), content=archive, headers=GZIP)
    assert raw.status_code == 201, raw.text
    assert raw.json()["source_size"] > 6 * MIB and raw.json()["file_count"] == 1
    files = {
        "file": ("big.tar.gz", tarball({"other.bin": os.urandom(6 * MIB)}), "application/gzip")
    }
    multipart = await api.post(versions_url(mcp), files=files, data={"version": "2.0.0"})
    assert multipart.status_code == 201, multipart.text
    listed = (await api.get(versions_url(mcp))).json()
    assert listed["total"] == 2


async def test_a_body_over_the_catalogs_limit_is_a_413_and_stores_nothing(
    api: httpx.AsyncClient, reg: Registry
) -> None:
    mcp = await new_mcp(api, "huge")
    resp = await api.post(versions_url(mcp), content=os.urandom(21 * MIB), headers=GZIP)
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert await stored_versions(reg.pool) == (0, 0)


async def test_other_routes_and_json_on_the_upload_route_keep_the_4_mib_cap(
    api: httpx.AsyncClient, reg: Registry
) -> None:
    mcp = await new_mcp(api, "capped")
    five_mib = "x" * (5 * MIB)
    other = await api.post("/api/v1/mcps", json={"name": "n", "description": five_mib})
    patch = await api.patch(f"/api/v1/mcps/{mcp['id']}", json={"description": five_mib})
    json_upload = await api.post(
        versions_url(mcp), json={"server_json": {"name": "a/b", "description": five_mib}}
    )
    for resp in (other, patch, json_upload):
        assert resp.status_code == 413
        assert resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert await stored_versions(reg.pool) == (0, 0)
    assert (await api.get("/api/v1/mcps/capped")).json()["description"] == ""


async def test_a_tarball_over_a_small_size_limit_is_a_413_naming_the_limit(
    small: httpx.AsyncClient, reg: Registry
) -> None:
    mcp = await new_mcp(small, "tiny-size")
    resp = await small.post(
        versions_url(mcp), content=tarball({"a.bin": os.urandom(3000)}), headers=GZIP
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["details"]["limit"] == 2048
    assert await stored_versions(reg.pool) == (0, 0)


@pytest.mark.parametrize(
    "files",
    [
        {f"f{i}.py": b"x" for i in range(4)},
        {"a.txt": b"a" * 600, "b.txt": b"b" * 401},
    ],
    ids=["file-count", "unpacked-size"],
)
async def test_a_tarball_over_a_small_file_or_unpacked_limit_is_refused(
    small: httpx.AsyncClient, reg: Registry, files: dict[str, bytes]
) -> None:
    mcp = await new_mcp(small, "tiny")
    resp = await small.post(versions_url(mcp), content=tarball(files), headers=GZIP)
    assert resp.status_code == 422
    assert resp.json()["error"]["details"]["fields"] == {"file": resp.json()["error"]["message"]}
    assert await stored_versions(reg.pool) == (0, 0)
    within = {name: body for name, body in list(files.items())[:1]}
    ok = await small.post(versions_url(mcp), content=tarball(within), headers=GZIP)
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b"this is not an archive", GZIP, 422),
        (b"", GZIP, 422),
        (b"", {"Content-Type": "application/x-tar"}, 422),
        (b"", {}, 400),
        (b"\x00\x01binary", {"Content-Type": "application/octet-stream"}, 422),
    ],
    ids=["text-as-gzip", "empty-gzip", "empty-tar", "empty-untyped", "binary-octets"],
)
async def test_a_body_that_is_not_a_tarball_is_a_4xx_and_stores_nothing(
    api: httpx.AsyncClient, reg: Registry, content: bytes, headers: dict, status: int
) -> None:
    mcp = await new_mcp(api, "notatar")
    resp = await api.post(versions_url(mcp), content=content, headers=headers)
    assert resp.status_code == status
    assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
    assert await stored_versions(reg.pool) == (0, 0)


async def test_an_empty_multipart_file_is_refused(api: httpx.AsyncClient, reg: Registry) -> None:
    mcp = await new_mcp(api, "emptyfile")
    files = {"file": ("src.tar.gz", b"", "application/gzip")}
    resp = await api.post(versions_url(mcp), files=files)
    assert resp.status_code == 422
    assert await stored_versions(reg.pool) == (0, 0)


async def test_a_git_ref_that_does_not_exist_is_a_422_naming_ref(
    api: httpx.AsyncClient, reg: Registry, tmp_path: Path
) -> None:
    git_repo(tmp_path / "repo")
    mcp = await new_mcp(api, "noref", repo_url=f"file://{tmp_path / 'repo'}")
    resp = await api.post(versions_url(mcp), json={"source": "git", "ref": "no-such-branch"})
    assert resp.status_code == 422
    assert list(resp.json()["error"]["details"]["fields"]) == ["ref"]
    missing = await api.post(
        versions_url(mcp), json={"source": "git", "url": f"file://{tmp_path / 'nothing'}"}
    )
    assert missing.status_code == 422
    assert list(missing.json()["error"]["details"]["fields"]) == ["url"]
    assert await stored_versions(reg.pool) == (0, 0)


@pytest.mark.parametrize(
    "doc",
    [
        {"description": "no name", "version": "1.0.0"},
        {"name": "", "version": "1.0.0"},
        {"name": 7, "version": "1.0.0"},
        {"name": "../etc", "version": "1.0.0"},
    ],
    ids=["missing", "empty", "not-a-string", "not-a-server-name"],
)
async def test_a_server_json_without_a_valid_name_is_a_422_and_changes_nothing(
    api: httpx.AsyncClient, reg: Registry, doc: dict
) -> None:
    mcp = await new_mcp(api, "unnamed", description="before")
    resp = await api.post(versions_url(mcp), json={"server_json": doc})
    assert resp.status_code == 422
    assert list(resp.json()["error"]["details"]["fields"]) == ["server_json"]
    assert await stored_versions(reg.pool) == (0, 0)
    assert (await api.get(f"/api/v1/mcps/{mcp['id']}")).json()["description"] == "before"


@pytest.mark.parametrize(
    "body",
    [{"description": None}, {"name": None}, {"visibility": None}, {"featured": None}],
    ids=["description", "name", "visibility", "featured"],
)
async def test_null_for_a_required_mcp_field_is_a_422_not_a_500(
    api: httpx.AsyncClient, body: dict
) -> None:
    mcp = await new_mcp(api, "nulls")
    resp = await api.patch(f"/api/v1/mcps/{mcp['id']}", json=body)
    assert resp.status_code == 422
    assert list(resp.json()["error"]["details"]["fields"]) == list(body)
    if "name" not in body:
        created = await api.post("/api/v1/mcps", json={"name": "nulls-2", **body})
        assert created.status_code == 422
