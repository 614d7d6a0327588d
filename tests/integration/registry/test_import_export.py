"""Import in the four formats (fixtures), dry-run, all-or-nothing, and export round-trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parents[2] / "fixtures" / "registry"


def fixture(name: str) -> dict[str, Any]:
    """A config file from tests/fixtures/registry."""
    return json.loads((FIXTURES / name).read_text())


async def names(api: Any) -> set[str]:
    """Names of the user servers."""
    items = (await api.get("/api/v1/servers", params={"page_size": 100})).json()["items"]
    return {s["name"] for s in items} - {"code"}


@pytest.mark.parametrize(
    ("file", "fmt", "expected"),
    [
        ("claude_desktop_config.json", "claude", {"filesystem", "github-tools"}),
        ("vscode_mcp.json", "vscode", {"fetch", "remote-docs", "legacy-events"}),
        ("mcphub_settings.json", "mcphub", {"amap", "playwright"}),
        ("generic.json", "generic", {"time", "search"}),
    ],
)
async def test_each_format_is_detected_imported_and_exported_back(
    api: Any, file: str, fmt: str, expected: set[str]
) -> None:
    doc = fixture(file)
    dry = await api.post("/api/v1/import", json={"config": doc, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["format"] == fmt and set(dry.json()["created"]) == expected
    assert await names(api) == set()
    resp = await api.post("/api/v1/import", json=doc)
    assert resp.status_code == 201, resp.text
    assert await names(api) == expected
    exported = (
        await api.get("/api/v1/export", params={"format": fmt, "include_secrets": "true"})
    ).json()
    await api.post("/api/v1/import", json={"config": exported, "on_conflict": "overwrite"})
    again = (
        await api.get("/api/v1/export", params={"format": fmt, "include_secrets": "true"})
    ).json()
    assert again == exported
    if fmt == "generic":
        by_name = {s["name"]: s for s in exported["servers"]}
        assert by_name["time"]["license"] == "MIT" and by_name["search"]["enabled"] is False
        assert by_name["search"]["headers"] == {"X-Api-Key": "genericFixtureSecret"}
    masked = (await api.get("/api/v1/export", params={"format": fmt})).text
    assert "FixtureSecret" not in masked


async def test_a_conflict_or_an_invalid_server_imports_nothing(api: Any) -> None:
    await api.post("/api/v1/servers", json={"name": "time", "transport": "stdio", "command": "x"})
    resp = await api.post("/api/v1/import", json=fixture("generic.json"))
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "CONFLICT"
    assert resp.json()["error"]["details"]["conflicts"] == [{"server": "time", "reason": "exists"}]
    assert await names(api) == {"time"}
    bad = {
        "mcpServers": {
            "ok": {"command": "x"},
            "broken": {"args": []},
            "evil": {"url": "http://169.254.169.254/"},
        }
    }
    resp = await api.post("/api/v1/import", json=bad)
    assert resp.status_code == 422
    assert set(resp.json()["error"]["details"]["servers"]) == {"broken", "evil"}
    assert await names(api) == {"time"}
    skipped = await api.post("/api/v1/import?on_conflict=skip", json=fixture("generic.json"))
    assert skipped.status_code == 201 and skipped.json()["skipped"] == ["time"]
    assert await names(api) == {"time", "search"}


async def test_unknown_documents_and_formats_are_refused(api: Any) -> None:
    resp = await api.post("/api/v1/import", json={"hello": "world"})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "VALIDATION_ERROR"
    assert (await api.post("/api/v1/import", json=[1, 2])).status_code == 422
    assert (await api.get("/api/v1/export", params={"format": "yaml"})).status_code == 422
