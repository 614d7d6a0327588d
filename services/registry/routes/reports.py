"""/api/v1/orgs/{org}/reports: certification reports of snapshots (PDF), rendered off the path."""

from __future__ import annotations

import uuid

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate
from libs.common.http import json_response, parse_body
from libs.common.pagination import list_query, page_body
from services.registry import reports
from services.registry.context import Registry
from services.registry.schemas import ReportCreate
from services.registry.store import reports as reports_store


def _reg(request: Request) -> Registry:
    """The registry's shared parts."""
    return request.state.registry


async def create_report(request: Request) -> Response:
    """Request a report of a snapshot (org admin): 202 PENDING, rendered in the background."""
    principal = await authenticate(request)
    reg = _reg(request)
    org = await reports.org_for(reg, principal, request.path_params["org"], "admin")
    body = await parse_body(request, ReportCreate)
    async with reg.pool.acquire() as conn:
        report = await reports.create(conn, principal, org, body.snapshot_id, body.format)
    resp = json_response(report, 202, headers={"Location": _location(org, report["id"])})
    resp.background = BackgroundTask(reports.generate_quietly, reg, uuid.UUID(report["id"]))
    return resp


def _location(org: str, report_id: str) -> str:
    """Where the report's status is read."""
    return f"/api/v1/orgs/{org}/reports/{report_id}"


async def list_reports(request: Request) -> Response:
    """The org's reports, newest first (any member; filters: status, snapshot_id)."""
    principal = await authenticate(request)
    reg = _reg(request)
    org = await reports.org_for(reg, principal, request.path_params["org"], "viewer")
    query = list_query(request, sorts=reports_store.SORTS, filters=reports_store.FILTERS)
    async with reg.pool.acquire() as conn:
        rows, total = await reports_store.list_reports(conn, org, query)
    return json_response(page_body([reports.view(r) for r in rows], total, query))


async def get_report(request: Request) -> Response:
    """One report's status (any member of the org)."""
    principal = await authenticate(request)
    reg = _reg(request)
    org = await reports.org_for(reg, principal, request.path_params["org"], "viewer")
    async with reg.pool.acquire() as conn:
        return json_response(await reports.get(conn, org, request.path_params["report"]))


async def download_report(request: Request) -> Response:
    """The report's PDF once COMPLETED (409 while PENDING)."""
    principal = await authenticate(request)
    reg = _reg(request)
    org = await reports.org_for(reg, principal, request.path_params["org"], "viewer")
    ref = request.path_params["report"]
    async with reg.pool.acquire() as conn:
        pdf = await reports.content(conn, org, ref)
    disposition = f'attachment; filename="report-{ref}.pdf"'
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": disposition})


routes = [
    Route("/api/v1/orgs/{org}/reports", create_report, methods=["POST"]),
    Route("/api/v1/orgs/{org}/reports", list_reports, methods=["GET"]),
    # before …/{report}: that pattern would take "<id>.pdf" whole
    Route("/api/v1/orgs/{org}/reports/{report}.pdf", download_report, methods=["GET"]),
    Route("/api/v1/orgs/{org}/reports/{report}", get_report, methods=["GET"]),
]
