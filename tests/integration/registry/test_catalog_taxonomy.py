"""PUT on categories and tags: changes by id or slug, a taken slug, an unknown one, bad input."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from services.registry.context import Registry
from tests.support.catalog import empty_catalog, new_mcp

KINDS = ["categories", "tags"]


@pytest.fixture(autouse=True)
async def clean_catalog(reg: Registry) -> AsyncIterator[None]:
    """Every test starts with an empty catalog."""
    await empty_catalog(reg.pool)
    yield


async def create(api: httpx.AsyncClient, kind: str, slug: str, name: str) -> dict:
    """A category or tag, created by the platform admin."""
    resp = await api.post(f"/api/v1/admin/{kind}", json={"slug": slug, "name": name})
    assert resp.status_code == 201, resp.text
    return resp.json()


async def listed(api: httpx.AsyncClient, kind: str) -> list[tuple[str, str]]:
    """(slug, name) of every category or tag."""
    body = (await api.get(f"/api/v1/admin/{kind}")).json()
    return [(item["slug"], item["name"]) for item in body["items"]]


@pytest.mark.parametrize("kind", KINDS)
async def test_put_changes_a_category_or_tag_by_id_or_slug(
    api: httpx.AsyncClient, kind: str
) -> None:
    row = await create(api, kind, "data", "Data")
    by_id = await api.put(f"/api/v1/admin/{kind}/{row['id']}", json={"name": "Databases"})
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["id"] == row["id"] and by_id.json()["name"] == "Databases"
    by_slug = await api.put(f"/api/v1/admin/{kind}/data", json={"slug": "databases"})
    assert by_slug.status_code == 200
    assert by_slug.json()["slug"] == "databases"
    same = await api.put(f"/api/v1/admin/{kind}/databases", json={"slug": "databases"})
    assert same.status_code == 200
    assert await listed(api, kind) == [("databases", "Databases")]


async def test_a_renamed_slug_is_what_mcps_show_and_filter_on(api: httpx.AsyncClient) -> None:
    cat = await create(api, "categories", "data", "Data")
    tag = await create(api, "tags", "sql", "SQL")
    mcp = await new_mcp(api, "pg", category="data", tags=["sql"])
    await api.put(f"/api/v1/admin/categories/{cat['id']}", json={"slug": "storage"})
    await api.put(f"/api/v1/admin/tags/{tag['id']}", json={"slug": "postgres"})
    shown = (await api.get(f"/api/v1/mcps/{mcp['id']}")).json()
    assert shown["category"]["slug"] == "storage" and shown["tags"] == ["postgres"]
    found = await api.get("/api/v1/mcps", params={"category": "storage", "tag": "postgres"})
    assert [m["name"] for m in found.json()["mcps"]] == ["pg"]


@pytest.mark.parametrize("kind", KINDS)
async def test_put_to_a_slug_another_has_is_a_409_and_changes_nothing(
    api: httpx.AsyncClient, kind: str
) -> None:
    await create(api, kind, "data", "Data")
    other = await create(api, kind, "web", "Web")
    resp = await api.put(
        f"/api/v1/admin/{kind}/{other['id']}", json={"slug": "data", "name": "Renamed"}
    )
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "CONFLICT"
    assert resp.json()["error"]["details"] == {"slug": "data"}
    assert await listed(api, kind) == [("data", "Data"), ("web", "Web")]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("ref", [str(uuid.uuid4()), "no-such-slug"], ids=["id", "slug"])
async def test_put_on_an_unknown_category_or_tag_is_a_404(
    api: httpx.AsyncClient, kind: str, ref: str
) -> None:
    resp = await api.put(f"/api/v1/admin/{kind}/{ref}", json={"name": "X"})
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("categories", {"slug": "Not A Slug"}, "slug"),
        ("categories", {"slug": None}, "slug"),
        ("categories", {"name": None}, "name"),
        ("categories", {"name": "x" * 201}, "name"),
        ("categories", {"description": None}, "description"),
        ("categories", {"colour": "red"}, "colour"),
        ("tags", {"slug": "-leading-dash"}, "slug"),
        ("tags", {"name": None}, "name"),
        ("tags", {"description": "tags have none"}, "description"),
    ],
)
async def test_put_with_bad_input_is_a_422_naming_the_field_and_changes_nothing(
    api: httpx.AsyncClient, kind: str, body: dict, field: str
) -> None:
    row = await create(api, kind, "data", "Data")
    resp = await api.put(f"/api/v1/admin/{kind}/{row['id']}", json=body)
    assert resp.status_code == 422
    assert list(resp.json()["error"]["details"]["fields"]) == [field]
    assert await listed(api, kind) == [("data", "Data")]


@pytest.mark.parametrize("kind", KINDS)
async def test_put_with_a_body_that_is_not_json_is_a_400(api: httpx.AsyncClient, kind: str) -> None:
    row = await create(api, kind, "data", "Data")
    resp = await api.put(
        f"/api/v1/admin/{kind}/{row['id']}",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_a_tag_created_with_a_description_is_refused(api: httpx.AsyncClient) -> None:
    resp = await api.post(
        "/api/v1/admin/tags", json={"slug": "sql", "name": "SQL", "description": "no"}
    )
    assert resp.status_code == 422
    assert await listed(api, "tags") == []


async def test_put_needs_a_platform_admin(api: httpx.AsyncClient, auth, registry_url: str) -> None:
    row = await create(api, "categories", "data", "Data")
    user = await auth.create_user()
    token = (await auth.login(user.username, user.password))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=registry_url, headers=headers) as someone:
        resp = await someone.put(f"/api/v1/admin/categories/{row['id']}", json={"name": "X"})
    assert resp.status_code == 403
    assert await listed(api, "categories") == [("data", "Data")]
