"""What every service gets from build_app: health, metrics, OpenAPI and one error format."""

from collections.abc import AsyncIterator

import httpx
import pytest

from libs.devstack.harness import serving, settings_for
from tests.integration.common.demo_app import DemoSettings, create_app


@pytest.fixture(scope="module")
async def api(pg_url: str, nats_url: str, namespace: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(
        DemoSettings,
        pg_url=pg_url,
        nats_url=nats_url,
        namespace=namespace,
        SWITCHBOARD_MAX_BODY_BYTES=1024,
    )
    async with serving(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_healthz_and_readyz_answer(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json()["status"] == "ok"
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": True, "nats": True}


async def test_an_unknown_path_is_a_json_404(api: httpx.AsyncClient) -> None:
    resp = await api.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"


async def test_a_wrong_method_is_a_json_405(api: httpx.AsyncClient) -> None:
    resp = await api.delete("/api/v1/widgets")
    assert resp.status_code == 405
    assert resp.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_malformed_json_is_a_400(api: httpx.AsyncClient) -> None:
    resp = await api.post(
        "/api/v1/widgets", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "VALIDATION_ERROR"


async def test_a_body_that_is_not_json_is_a_415(api: httpx.AsyncClient) -> None:
    resp = await api.post(
        "/api/v1/widgets",
        content=b"name=x",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 415
    assert resp.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_invalid_fields_are_a_422_naming_each_field(api: httpx.AsyncClient) -> None:
    resp = await api.post("/api/v1/widgets", json={"name": "", "extra": 1})
    assert resp.status_code == 422
    assert set(resp.json()["error"]["details"]["fields"]) == {"name", "extra"}


async def test_an_oversized_body_is_a_413(api: httpx.AsyncClient) -> None:
    resp = await api.post("/api/v1/widgets", json={"name": "x" * 4000})
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_an_oversized_chunked_body_is_a_413(api: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 500

    resp = await api.post(
        "/api/v1/widgets", content=chunks(), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 413


async def test_created_then_conflict(api: httpx.AsyncClient) -> None:
    first = await api.post("/api/v1/widgets", json={"name": "gear", "colour": "red"})
    assert first.status_code == 201
    again = await api.post("/api/v1/widgets", json={"name": "gear"})
    assert again.status_code == 409
    assert again.json()["error"]["details"] == {"name": "gear"}


async def test_an_unexpected_exception_is_internal_without_internals(
    api: httpx.AsyncClient,
) -> None:
    resp = await api.get("/api/v1/explode", headers={"X-Request-Id": "boom-1"})
    assert resp.status_code == 500
    body = resp.json()
    assert body["error"]["code"] == "INTERNAL"
    assert body["error"]["details"]["request_id"] == "boom-1"
    assert "hunter2" not in resp.text


async def test_the_request_id_is_echoed_or_generated(api: httpx.AsyncClient) -> None:
    given = await api.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await api.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32


async def test_metrics_label_route_templates_not_paths(api: httpx.AsyncClient) -> None:
    await api.get("/api/v1/widgets/12345")
    text = (await api.get("/metrics")).text
    assert 'route="/api/v1/widgets/{id:int}"' in text
    assert "widgets/12345" not in text
    assert "process_resident_memory_bytes" in text


async def test_openapi_lists_the_routes(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    assert doc["paths"]["/api/v1/widgets"]["post"]["summary"] == "Create a widget."
    assert "/healthz" in doc["paths"]


async def test_a_protected_route_without_credentials_is_401(api: httpx.AsyncClient) -> None:
    resp = await api.get("/api/v1/whoami")
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "UNAUTHENTICATED"
    garbage = await api.get("/api/v1/whoami", headers={"Authorization": "Bearer garbage"})
    assert garbage.status_code == 401
