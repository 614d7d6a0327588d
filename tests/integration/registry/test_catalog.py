"""Catalog sync against a local fixture catalog, and descriptions from a local fake LLM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from libs.devstack.harness import serving

FIXTURES = Path(__file__).parents[2] / "fixtures" / "registry"


def load(name: str) -> Any:
    """A fixture document."""
    return json.loads((FIXTURES / name).read_text())


def catalog_app(seen: list[dict[str, str]]) -> Starlette:
    """The official registry's /v0/servers (two pages) and ModelScope's list."""

    async def registry_list(request: Request) -> JSONResponse:
        seen.append(dict(request.headers))
        page = (
            "mcp_registry_page2.json"
            if request.query_params.get("cursor") == "page2"
            else ("mcp_registry_page1.json")
        )
        return JSONResponse(load(page))

    async def modelscope(request: Request) -> JSONResponse:
        return JSONResponse(load("modelscope_list.json"))

    return Starlette(
        routes=[Route("/v0/servers", registry_list), Route("/api/v1/mcp/servers", modelscope)]
    )


def fake_llm(calls: list[dict[str, Any]]) -> Starlette:
    """A tiny OpenAI-compatible chat-completions endpoint (a test peer)."""

    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        calls.append({"body": body, "auth": request.headers.get("authorization")})
        text = f"Describes {body['messages'][1]['content'].splitlines()[0]}."
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": text}}]})

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


async def test_syncing_the_official_registry_adds_new_servers_and_reports_refused_ones(
    api: Any,
) -> None:
    seen: list[dict[str, str]] = []
    async with serving(catalog_app(seen)) as base:
        await api.put("/api/v1/settings/catalog_sync_url", json={"value": base + "/v0/servers"})
        await api.put("/api/v1/settings/catalog_sync_token", json={"value": "catalog-s3cret"})
        dry = (await api.post("/api/v1/servers/sync", json={"dry_run": True})).json()
        assert dry["created"] == ["weather", "files"] and "internal" in dry["errors"]
        resp = await api.post("/api/v1/servers/sync")
        again = (await api.post("/api/v1/servers/sync")).json()
    assert resp.status_code == 200 and resp.json()["format"] == "mcp-registry"
    assert again["created"] == [] and again["skipped"] == ["weather", "files"]
    files = (await api.get("/api/v1/servers/files")).json()
    assert files["command"] == "npx" and files["args"] == ["-y", "@acme/files-mcp"]
    assert files["enabled"] is False
    assert seen[0]["authorization"] == "Bearer catalog-s3cret"


async def test_syncing_modelscope_adds_its_servers(api: Any) -> None:
    async with serving(catalog_app([])) as base:
        resp = await api.post(
            "/api/v1/servers/sync-modelscope", json={"url": base + "/api/v1/mcp/servers"}
        )
    assert resp.status_code == 200 and resp.json()["created"] == ["amap-maps"]
    assert (await api.get("/api/v1/servers/amap-maps")).json()["display_name"] == "高德地图"


async def test_descriptions_come_from_the_configured_llm(api: Any) -> None:
    await api.post(
        "/api/v1/servers", json={"name": "files", "transport": "stdio", "command": "npx"}
    )
    missing = await api.post("/api/v1/servers/files/generate-description")
    assert missing.status_code == 409 and missing.json()["error"]["code"] == "CONFLICT"
    calls: list[dict[str, Any]] = []
    async with serving(fake_llm(calls)) as base:
        for key, value in [
            ("llm_base_url", base + "/v1"),
            ("llm_model", "tiny"),
            ("llm_api_key", "sk-s3cret"),
        ]:
            assert (await api.put(f"/api/v1/settings/{key}", json={"value": value})).is_success
        resp = await api.post("/api/v1/servers/files/generate-description")
        batch = (await api.post("/api/v1/servers/analyze-all?force=true")).json()
    assert resp.status_code == 200 and resp.json()["description"].startswith("Describes Server")
    assert (await api.get("/api/v1/servers/files")).json()["description"] == resp.json()[
        "description"
    ]
    assert calls[0]["auth"] == "Bearer sk-s3cret" and calls[0]["body"]["model"] == "tiny"
    assert "files" in batch["updated"]
