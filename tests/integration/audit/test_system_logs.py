"""GET /api/v1/monitoring/logs: the services' own WARNING+ lines, as the mcphub seed asks."""

from __future__ import annotations

import secrets

import httpx
import structlog

from libs.devstack.harness import until
from tests.integration.audit.conftest import People, bearer


async def test_a_services_warning_is_listed_by_level_and_source_without_its_secrets(
    api: httpx.AsyncClient, people: People
) -> None:
    marker = f"seed_probe_{secrets.token_hex(4)}"
    log = structlog.get_logger()
    with structlog.contextvars.bound_contextvars(service="audit"):  # as log.configure binds it
        log.info(f"{marker}_info")  # below WARNING: not kept
        log.warning(marker, token="sbk_" + "abcdefgh12345678", server="files")
    admin = bearer(people.admin)

    async def listed() -> list[dict]:
        resp = await api.get(
            "/api/v1/monitoring/logs?level=warning&source=audit&limit=1000&since=5m", headers=admin
        )
        return [i for i in resp.json()["items"] if i["event"].startswith(marker)]

    items = await until(listed, timeout=30, what="the warning to reach audit")
    assert [i["event"] for i in items] == [marker]
    line = items[0]
    assert (line["level"], line["source"], line["message"]) == ("warning", "audit", marker)
    assert line["fields"]["server"] == "files" and "abcdefgh" not in str(line)
    errors_only = await api.get("/api/v1/monitoring/logs?level=error&source=audit", headers=admin)
    assert marker not in errors_only.text
    other = await api.get("/api/v1/monitoring/logs?source=gateway&since=1h", headers=admin)
    assert other.status_code == 200 and marker not in other.text
    for params in ("level=loud", "source=nginx", "limit=0", "since=yesterday"):
        bad = await api.get(f"/api/v1/monitoring/logs?{params}", headers=admin)
        assert bad.status_code == 422, params
        assert bad.json()["error"]["code"] == "VALIDATION_ERROR"
    user = await api.get("/api/v1/monitoring/logs", headers=bearer(people.alice.token))
    assert user.status_code == 403
