"""Certification reports: requested PENDING, rendered off the request path, then COMPLETED/FAILED.

The replica that took the request renders it in a background task after answering 202; a report
left PENDING by a crash or a stop is rendered when a replica starts (`running`). A claim is a
row lock (FOR UPDATE SKIP LOCKED) held while rendering, so two replicas never render one report
and a crash mid-way leaves it PENDING.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from libs.common import events as ev
from libs.common.authn import Principal
from libs.common.errors import Conflict, Forbidden, NotFound
from services.registry import orgs, report_pdf
from services.registry.context import SCHEMA, Registry
from services.registry.store import reports as store

log = structlog.get_logger()


async def org_for(reg: Registry, principal: Principal, ref: str, minimum: str) -> str:
    """The id of the org named by `ref` (id or slug) when the caller's role there is `minimum`.

    404 for an org the caller is not in (it is not confirmed) or that does not exist, 403 for a
    member below `minimum`."""
    org = await orgs.org_id(reg, principal, ref)
    if principal.is_platform_admin and org not in principal.orgs:
        found = await orgs.lookup(reg, org)
        if found is None:
            raise NotFound(f"Organisation {ref!r} not found.", details={"org": ref})
        org = found.id
    require_member(principal, org, minimum)
    return org


def require_member(principal: Principal, org: str, minimum: str) -> None:
    """404 for an org the caller is not in (it is not confirmed), 403 below `minimum`."""
    if principal.role_in(org) is None:
        raise NotFound(f"Organisation {org!r} not found.", details={"org": org})
    if not principal.has_org_role(org, minimum):
        raise Forbidden(
            f"This needs the {minimum} role in the organisation.",
            details={"org": org, "required_role": minimum},
        )


async def create(
    conn: asyncpg.Connection, principal: Principal, org: str, snapshot_id: uuid.UUID, fmt: str
) -> dict[str, Any]:
    """A PENDING report of a snapshot the org may read (404 otherwise)."""
    readable_by = None if principal.is_platform_admin else org
    if await store.readable_snapshot(conn, snapshot_id, readable_by) is None:
        raise NotFound(
            f"Snapshot {str(snapshot_id)!r} not found.", details={"snapshot_id": str(snapshot_id)}
        )
    row = await store.insert_report(conn, org, snapshot_id, fmt, principal.id)
    return view(row)


async def get(conn: asyncpg.Connection, org: str, ref: str) -> dict[str, Any]:
    """One report of the org, 404 when it has none by that id."""
    report_id = _uuid(ref)
    row = await store.get_report(conn, org, report_id) if report_id else None
    if row is None:
        raise NotFound(f"Report {ref!r} not found.", details={"report": ref})
    return view(row)


async def content(conn: asyncpg.Connection, org: str, ref: str) -> bytes:
    """The PDF of a COMPLETED report; 409 while it is PENDING or when it FAILED."""
    report = await get(conn, org, ref)
    if report["status"] != "COMPLETED":
        raise Conflict(
            "The report is not ready: it is still being generated."
            if report["status"] == "PENDING"
            else "The report could not be generated; request a new one.",
            details={"report": report["id"], "status": report["status"]},
        )
    data = await store.get_content(conn, org, uuid.UUID(report["id"]))
    return data or b""


def view(row: asyncpg.Record) -> dict[str, Any]:
    """A report as the API shows it."""
    rid, org = str(row["id"]), row["org"]
    done = row["completed_at"]
    return {
        "id": rid,
        "org": org,
        "snapshot_id": str(row["snapshot_id"]),
        "format": row["format"],
        "status": row["status"],
        "error": row["error"],
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "completed_at": done,
        "download_url": (
            f"/api/v1/orgs/{org}/reports/{rid}.pdf" if row["status"] == "COMPLETED" else None
        ),
    }


def _uuid(ref: str) -> uuid.UUID | None:
    """`ref` as a UUID, or None when it is none."""
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None


async def generate(reg: Registry, report_id: uuid.UUID) -> str | None:
    """Render one PENDING report; its new status, or None when it was done or held elsewhere."""
    async with reg.pool.acquire() as conn, conn.transaction():
        claimed = await store.claim_pending(conn, report_id)
        if claimed is None:
            return None
        try:
            data = await _report_data(conn, claimed["snapshot_id"])
            pdf = await asyncio.to_thread(report_pdf.render, data)
        except Exception as exc:
            log.exception("report_failed", report_id=str(report_id))
            await store.fail_report(conn, report_id, f"{type(exc).__name__}: {exc}"[:500])
            status = "FAILED"
        else:
            await store.complete_report(conn, report_id, pdf)
            status = "COMPLETED"
        row = await store.get_report_by_id(conn, report_id)
        payload = ev.ReportChanged(str(report_id), str(row["snapshot_id"]), row["format"], status)
        kind = ev.REPORT_COMPLETED if status == "COMPLETED" else ev.REPORT_FAILED
        await reg.emit(conn, kind.event(payload, source=SCHEMA, org=row["org"]))
    log.info("report_generated", report_id=str(report_id), status=status)
    return status


async def _report_data(conn: asyncpg.Connection, snapshot_id: uuid.UUID) -> report_pdf.ReportData:
    """What the report of a snapshot shows, read in the claiming transaction."""
    snap = await store.snapshot_details(conn, snapshot_id)
    if snap is None:
        raise LookupError("the snapshot no longer exists")
    controls = [
        report_pdf.Control(
            r["control_id"], r["control_name"], r["passed"], r["severity"], r["message"]
        )
        for r in await store.list_control_results(conn, snapshot_id)
    ]
    return report_pdf.ReportData(
        mcp_name=snap["mcp_name"],
        version=snap["visible_version"],
        scanned_at=snap["created_at"],
        grade=snap["grade"],
        scores={
            "global": snap["global_score"],
            "security": snap["security_score"],
            "supply_chain": snap["supply_chain_score"],
            "maturity": snap["maturity_score"],
        },
        findings={
            **{s: snap[f"{s}_findings"] for s in report_pdf.SEVERITIES},
            "total": snap["total_findings"],
        },
        controls=controls,
        versions={
            "toolchain": snap["toolchain_version"],
            "scoring": snap["scoring_version"],
            "controls catalog": snap["controls_catalog_version"],
        },
        generated_at=datetime.now(UTC),
    )


async def generate_pending(reg: Registry) -> int:
    """Render every PENDING report (those a stopped replica left); how many this call rendered."""
    async with reg.pool.acquire() as conn:
        pending = await store.list_pending_ids(conn)
    done = 0
    for report_id in pending:
        if await generate(reg, report_id) is not None:
            done += 1
    return done


async def generate_quietly(reg: Registry, report_id: uuid.UUID) -> None:
    """`generate` as a background task: failures are logged, the report stays PENDING."""
    try:
        await generate(reg, report_id)
    except Exception:
        log.exception("report_generation_interrupted", report_id=str(report_id))


@contextlib.asynccontextmanager
async def running(reg: Registry) -> AsyncIterator[None]:
    """Pick up reports left PENDING, in the background, while the service runs."""

    async def sweep() -> None:
        try:
            if done := await generate_pending(reg):
                log.info("reports_resumed", reports=done)
        except Exception:
            log.exception("reports_resume_failed")

    task = asyncio.create_task(sweep())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
