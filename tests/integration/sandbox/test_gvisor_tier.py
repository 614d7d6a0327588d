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
