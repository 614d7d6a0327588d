"""Certification reports: requested PENDING, rendered to PDF off the request path, per org."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from services.registry import reports
from services.registry.context import Registry
from tests.integration.registry.test_tenancy import as_user, org_admin
from tests.support.catalog import empty_catalog, insert_mcp, insert_snapshot
from tests.support.events import Events


@pytest.fixture(autouse=True)
async def no_catalog(reg: Registry) -> AsyncIterator[None]:
    """Every test starts without catalog entries and reports."""
    await empty_catalog(reg.pool)
    yield


async def private_snapshot(reg: Registry, org: str, name: str = "acme-files") -> uuid.UUID:
    """A snapshot of a private MCP of `org`."""
    async with reg.pool.acquire() as conn:
        return await insert_snapshot(conn, await insert_mcp(conn, name, org))


def pdf_text_and_page(pdf: bytes, where: Path) -> tuple[str, Path]:
    """The PDF's text (pdftotext) and its first page as PNG (pdftoppm)."""
    source = where / "report.pdf"
    source.write_bytes(pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(source), "-"], capture_output=True, check=True, text=True
    ).stdout
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(source),
         str(where / "page")],
        check=True,
    )  # fmt: skip
    return text, where / "page.png"


async def test_a_report_goes_from_pending_to_completed_and_its_pdf_shows_the_snapshot(
    auth: Any, registry_url: str, reg: Registry, events: Events, tmp_path: Path
) -> None:
    org, admin = await org_admin(auth)
    snapshot = await private_snapshot(reg, org["id"])
    async with as_user(registry_url, auth, admin) as c:
        resp = await c.post(
            f"/api/v1/orgs/{org['slug']}/reports", json={"snapshot_id": str(snapshot)}
        )
        assert resp.status_code == 202, resp.text
        report = resp.json()
        assert report["status"] == "PENDING" and report["format"] == "PDF"
        assert report["org"] == org["id"] and report["snapshot_id"] == str(snapshot)
        await events.wait_for(
            lambda e: e.type == "registry.report.completed" and e.data["report_id"] == report["id"]
        )
        status = (await c.get(f"/api/v1/orgs/{org['id']}/reports/{report['id']}")).json()
        assert status["status"] == "COMPLETED" and status["download_url"]
        resp = await c.get(f"/api/v1/orgs/{org['id']}/reports/{report['id']}.pdf")
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/pdf"
        listed = (await c.get(f"/api/v1/orgs/{org['id']}/reports")).json()
        assert [r["id"] for r in listed["items"]] == [report["id"]] and listed["total"] == 1
    text, page = pdf_text_and_page(resp.content, tmp_path)
    assert "acme-files" in text and "commit-abc1234-20261201" in text
    assert "Grade: C" in text and "SEC-001" in text and "FAIL" in text
    image = Image.open(page).convert("L")
    darkest, lightest = image.getextrema()
    assert image.size[0] > 100 and darkest < 100 < lightest  # text on a white page, not blank


async def test_a_report_left_pending_answers_conflict_until_a_replica_renders_it(
    auth: Any, registry_url: str, reg: Registry
) -> None:
    org, admin = await org_admin(auth)
    snapshot = await private_snapshot(reg, org["id"])
    report_id = uuid.uuid4()
    async with reg.pool.acquire() as conn:  # as a replica that stopped before rendering it
        await conn.execute(
            "INSERT INTO registry.reports (id, org, snapshot_id) VALUES ($1, $2, $3)",
            report_id,
            org["id"],
            snapshot,
        )
    async with as_user(registry_url, auth, admin) as c:
        resp = await c.get(f"/api/v1/orgs/{org['id']}/reports/{report_id}.pdf")
        assert resp.status_code == 409 and resp.json()["error"]["code"] == "CONFLICT"
        assert resp.json()["error"]["details"]["status"] == "PENDING"
        assert await reports.generate_pending(reg) == 1
        assert await reports.generate_pending(reg) == 0
        resp = await c.get(f"/api/v1/orgs/{org['id']}/reports/{report_id}.pdf")
        assert resp.status_code == 200 and resp.content.startswith(b"%PDF")


async def test_another_orgs_reports_and_private_snapshots_are_not_found(
    auth: Any, registry_url: str, reg: Registry, events: Events
) -> None:
    org_a, admin_a = await org_admin(auth)
    org_b, admin_b = await org_admin(auth)
    theirs = await private_snapshot(reg, org_b["id"], "theirs")
    async with reg.pool.acquire() as conn:
        public = await insert_snapshot(conn, await insert_mcp(conn, "shared", None, "public"))
    async with as_user(registry_url, auth, admin_b) as c:
        resp = await c.post(
            f"/api/v1/orgs/{org_b['id']}/reports", json={"snapshot_id": str(theirs)}
        )
        assert resp.status_code == 202
        report = resp.json()
    await events.wait_for(lambda e: e.data.get("report_id") == report["id"])
    async with as_user(registry_url, auth, admin_a) as c:
        for path in (f"reports/{report['id']}", f"reports/{report['id']}.pdf"):
            for org in (org_a, org_b):
                resp = await c.get(f"/api/v1/orgs/{org['id']}/{path}")
                assert resp.status_code == 404, (org, path, resp.text)
        resp = await c.post(
            f"/api/v1/orgs/{org_a['id']}/reports", json={"snapshot_id": str(theirs)}
        )
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_FOUND"
        resp = await c.post(
            f"/api/v1/orgs/{org_b['id']}/reports", json={"snapshot_id": str(theirs)}
        )
        assert resp.status_code == 404
        assert (await c.get(f"/api/v1/orgs/{org_a['id']}/reports")).json()["total"] == 0
        resp = await c.post(
            f"/api/v1/orgs/{org_a['id']}/reports", json={"snapshot_id": str(public)}
        )
        assert resp.status_code == 202


async def test_only_org_admins_request_reports_and_bad_requests_change_nothing(
    auth: Any, registry_url: str, reg: Registry
) -> None:
    org, _ = await org_admin(auth)
    member = await auth.create_user()
    await auth.add_org_member(org["id"], member, "member")
    snapshot = await private_snapshot(reg, org["id"])
    path = f"/api/v1/orgs/{org['id']}/reports"
    async with as_user(registry_url, auth, member) as c:
        resp = await c.post(path, json={"snapshot_id": str(snapshot)})
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "FORBIDDEN"
        assert (await c.get(path)).status_code == 200
    org_admin_ = await auth.create_user()
    await auth.add_org_member(org["id"], org_admin_, "admin")
    async with as_user(registry_url, auth, org_admin_) as c:
        for body in (
            {"snapshot_id": "not-a-uuid"},
            {"snapshot_id": str(snapshot), "format": "DOCX"},
            {"snapshot_id": str(snapshot), "extra": 1},
            {},
        ):
            resp = await c.post(path, json=body)
            assert resp.status_code == 422, (body, resp.text)
            assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
        resp = await c.post(path, content=b"{", headers={"content-type": "application/json"})
        assert resp.status_code == 400
        resp = await c.post(path, json={"snapshot_id": str(uuid.uuid4())})
        assert resp.status_code == 404
        assert (await c.get(f"{path}/{uuid.uuid4()}")).status_code == 404
        assert (await c.get(f"{path}/nope.pdf")).status_code == 404
    async with reg.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM registry.reports") == 0
