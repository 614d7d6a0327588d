"""Modules: index metadata, wheel-only installs, and the allowlist enforced by what is mounted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

IMPORT_SIX = "import six\nasync def main():\n    return six.__version__"


async def test_an_allowlisted_module_is_installed_and_mounted_for_tools_that_import_it(
    api: httpx.AsyncClient, admin: dict
) -> None:
    meta = await api.get("/api/v1/sandbox/modules/pypi/six", headers=admin)
    assert meta.status_code == 200
    assert meta.json()["name"] == "six"
    refused = await api.post("/api/v1/sandbox/modules/six/install", headers=admin)
    assert refused.status_code == 409
    await api.patch("/api/v1/sandbox/modules", json={"add": ["six"]}, headers=admin)
    try:
        before = await api.post(
            "/api/v1/sandbox/tools/test-code", json={"code": IMPORT_SIX}, headers=admin
        )
        assert before.json()["error"]["type"] == "ModuleNotFoundError"
        installed = await api.post("/api/v1/sandbox/modules/six/install", headers=admin)
        assert installed.status_code == 200, installed.text
        assert installed.json()["status"] == "installed"
        enhanced = await api.get("/api/v1/sandbox/modules/enhanced", headers=admin)
        six = next(m for m in enhanced.json()["items"] if m["name"] == "six")
        assert six["installed"] is True and "six" in six["imports"]
        after = await api.post(
            "/api/v1/sandbox/tools/test-code", json={"code": IMPORT_SIX}, headers=admin
        )
        assert after.json()["result"] == installed.json()["version"]
    finally:
        await api.patch("/api/v1/sandbox/modules", json={"remove": ["six"]}, headers=admin)
    removed = await api.post(
        "/api/v1/sandbox/tools/test-code", json={"code": IMPORT_SIX}, headers=admin
    )
    assert removed.status_code == 422  # off the allowlist: refused before it runs


async def test_an_unknown_package_is_not_found(api: httpx.AsyncClient, admin: dict) -> None:
    resp = await api.get("/api/v1/sandbox/modules/pypi/no-such-package-sb-4f2a9c", headers=admin)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "NOT_FOUND"
    bad = await api.get("/api/v1/sandbox/modules/pypi/..%2Fetc", headers=admin)
    assert bad.status_code == 404


async def test_installing_a_known_vulnerable_version_is_refused_naming_the_advisory(
    api: httpx.AsyncClient, admin: dict, sandbox: Any
) -> None:
    advisories = Path(sandbox.state.runtime.settings.osv_advisories_path)
    record = {
        "id": "GHSA-sb05-test-six",
        "summary": "Test advisory: every six release",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "six"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            }
        ],
    }
    (advisories / "six.json").write_text(json.dumps(record))
    packages = sandbox.state.runtime.layout.work_root / "packages"
    before = sorted(p.name for p in packages.glob("six*/*"))  # another test may have installed it
    await api.patch("/api/v1/sandbox/modules", json={"add": ["six"]}, headers=admin)
    try:
        resp = await api.post("/api/v1/sandbox/modules/six/install", headers=admin)
        assert resp.status_code == 422, resp.text
        error = resp.json()["error"]
        assert error["details"]["advisories"] == ["GHSA-sb05-test-six"]
        assert "GHSA-sb05-test-six" in error["message"]
        # nothing was installed or replaced, and the staging copy is gone
        assert sorted(p.name for p in packages.glob("six*/*")) == before
        assert not (packages / "six.new").exists()
    finally:
        (advisories / "six.json").unlink()
        await api.patch("/api/v1/sandbox/modules", json={"remove": ["six"]}, headers=admin)
