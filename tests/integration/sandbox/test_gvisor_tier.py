"""Under gVisor the status reports tier `gvisor` (forced here with SANDBOX_GVISOR=true)."""

from __future__ import annotations

import shutil
from typing import Any

import httpx

from services.sandbox.app import create_app as create_sandbox
from tests.integration.sandbox.conftest import sandbox_settings
from tests.support import serving


async def test_a_sandbox_under_gvisor_reports_the_gvisor_tier_and_its_inner_mechanism(
    pg_url: str, nats_url: str, namespace: str, auth: Any, admin: dict[str, str]
) -> None:
    settings = sandbox_settings(
        pg_url, nats_url, namespace, SANDBOX_GVISOR="true", SWITCHBOARD_INSTANCE="sbx-gvisor"
    )
    try:
        async with serving(create_sandbox(settings)) as url, httpx.AsyncClient(base_url=url) as api:
            resp = await api.get("/api/v1/sandbox/status", headers=admin)
    finally:
        shutil.rmtree(settings.work_root, ignore_errors=True)
    assert resp.status_code == 200
    tier = resp.json()["isolation"]
    assert tier["tier"] == "gvisor"
    assert tier["gvisor"] is True
    assert tier["mechanism"] == "bwrap-userns"
    assert tier["untrusted_code_allowed"] is True


async def test_a_weak_tier_refuses_untrusted_code_until_an_admin_accepts_it(
    pg_url: str, nats_url: str, namespace: str, auth: Any, admin: dict[str, str]
) -> None:
    # under gVisor with no inner mechanism the code shares the service's network and files
    settings = sandbox_settings(
        pg_url,
        nats_url,
        namespace,
        SANDBOX_GVISOR="true",
        SANDBOX_ISOLATION="none",
        SWITCHBOARD_INSTANCE="sbx-weak",
    )
    code = {"code": "async def main():\n    return 42\n", "args": {}}
    try:
        async with serving(create_sandbox(settings)) as url, httpx.AsyncClient(base_url=url) as api:
            status = (await api.get("/api/v1/sandbox/status", headers=admin)).json()["isolation"]
            refused = await api.post("/api/v1/sandbox/tools/test-code", json=code, headers=admin)
            accept = {"accept_weak_isolation": True}
            patched = await api.patch("/api/v1/sandbox/policy", json=accept, headers=admin)
            try:
                ran = await api.post("/api/v1/sandbox/tools/test-code", json=code, headers=admin)
                accepted = (await api.get("/api/v1/sandbox/status", headers=admin)).json()
            finally:
                reset = {"accept_weak_isolation": False}
                await api.patch("/api/v1/sandbox/policy", json=reset, headers=admin)
    finally:
        shutil.rmtree(settings.work_root, ignore_errors=True)
    assert (status["tier"], status["mechanism"]) == ("gvisor", "none")
    assert status["enforces"]["network"] is False and status["enforces"]["filesystem"] is False
    assert "network isolation" in status["missing"]
    assert (status["weak"], status["untrusted_code_allowed"]) == (True, False)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "VALIDATION_ERROR"
    assert patched.status_code == 200, patched.text
    assert ran.status_code == 200 and ran.json()["result"] == 42, ran.text
    assert accepted["isolation"]["untrusted_code_allowed"] is True
