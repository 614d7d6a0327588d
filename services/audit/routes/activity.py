"""Activity records (who changed what): lists, stats, recent, export, admin and org variants."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate, require_org_role, require_platform_admin
from libs.common.errors import NotFound
from libs.common.http import json_response
from libs.common.pagination import list_query, page_body
from services.audit import exporting, queries, schemas
from services.audit.context import context_of
from services.audit.store import activity
from services.audit.store.activity import ActivityFilters
from services.audit.visibility import Scope, org_id, org_refs, scope_for


async def _page(request: Request, scope: Scope, filters: ActivityFilters | None = None) -> Response:
    """One page of activity under `scope`."""
    query = list_query(request, sorts=activity.SORTS, filters=activity.FILTERS, default_sort="time")
    filters = filters or queries.activity_filters(request, query.q)
    async with context_of(request).pool.acquire() as conn:
        rows, total = await activity.list_activity(conn, filters, scope, query)
    return json_response(page_body([schemas.activity_out(r) for r in rows], total, query))


async def list_activity(request: Request) -> Response:
    """Activity the caller may see, filtered (action, actor, org, source, target, since, q)."""
    return await _page(request, scope_for(await authenticate(request)))


async def recent_activity(request: Request) -> Response:
    """The latest activity the caller may see (`limit`, default 20)."""
    scope = scope_for(await authenticate(request))
    limit = queries.int_param(request, "limit", 20, 1, 100)
    query = list_query(request, sorts=activity.SORTS, default_sort="time")
    query = type(query)(1, limit, "time", "desc")
    filters = queries.activity_filters(request, None)
    async with context_of(request).pool.acquire() as conn:
        rows, _ = await activity.list_activity(conn, filters, scope, query)
    return json_response({"items": [schemas.activity_out(r) for r in rows]})


async def activity_stats(request: Request) -> Response:
    """Activity counts by action and source, and the most active actors, over a range."""
    scope = scope_for(await authenticate(request))
    filters = queries.activity_filters(request, request.query_params.get("q") or None)
    top = queries.int_param(request, "top", 10, 1, 100)
    async with context_of(request).pool.acquire() as conn:
        found = await activity.activity_stats(conn, filters, scope, top)
    return json_response(
        {
            "total": found["total"],
            "by_action": [dict(r) for r in found["by_action"]],
            "by_source": [dict(r) for r in found["by_source"]],
            "top_actors": [dict(r) for r in found["actors"]],
        }
    )


async def export_activity(request: Request) -> Response:
    """The filtered activity as CSV or NDJSON, streamed."""
    scope = scope_for(await authenticate(request))
    fmt = queries.export_format(request)
    query = list_query(request, sorts=activity.SORTS, filters=activity.FILTERS, default_sort="time")
    filters = queries.activity_filters(request, query.q)
    return exporting.stream(
        context_of(request).pool,
        lambda conn: activity.iter_activity(conn, filters, scope, query.order_sql),
        fmt,
        schemas.ACTIVITY_CSV,
        schemas.activity_out,
        "activity",
    )


async def admin_audit(request: Request) -> Response:
    """Every activity record (platform admins)."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    return await _page(request, Scope(everything=True))


async def admin_audit_user(request: Request) -> Response:
    """Activity by one user (platform admins)."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    query = list_query(request, sorts=activity.SORTS, filters=activity.FILTERS, default_sort="time")
    filters = queries.activity_filters(request, query.q, actor=request.path_params["id"])
    return await _page(request, Scope(everything=True), filters)


async def admin_audit_org(request: Request) -> Response:
    """Activity in one org (platform admins)."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    ref = request.path_params["id"]
    query = list_query(request, sorts=activity.SORTS, filters=activity.FILTERS, default_sort="time")
    filters = queries.activity_filters(request, query.q, org=(ref,))
    return await _page(request, Scope(everything=True), filters)


async def org_audit_events(request: Request) -> Response:
    """Activity in one org (its admins and owners; MCP Hub's audit-events)."""
    principal = await authenticate(request)
    ref = request.path_params["org"]
    org = org_id(principal, ref)
    if principal.role_in(org) is None and org not in principal.org_slugs.values():
        # another org's audit is not there for the caller (docs/TENANCY.md)
        raise NotFound(f"Organisation {ref!r} not found.", details={"org": ref})
    require_org_role(principal, org, "admin")
    query = list_query(request, sorts=activity.SORTS, filters=activity.FILTERS, default_sort="time")
    filters = queries.activity_filters(request, query.q, org=org_refs(principal, org))
    return await _page(request, Scope(everything=True), filters)


routes = [
    Route("/api/v1/activity", list_activity, methods=["GET"]),
    Route("/api/v1/activity/logs", list_activity, methods=["GET"]),
    Route("/api/v1/activity/stats", activity_stats, methods=["GET"]),
    Route("/api/v1/activity/recent", recent_activity, methods=["GET"]),
    Route("/api/v1/activity/export", export_activity, methods=["GET"]),
    Route("/api/v1/audit/events", list_activity, methods=["GET"]),
    Route("/api/v1/audit/events/export", export_activity, methods=["GET"]),
    Route("/api/v1/admin/audit", admin_audit, methods=["GET"]),
    Route("/api/v1/admin/audit/users/{id}", admin_audit_user, methods=["GET"]),
    Route("/api/v1/admin/audit/orgs/{id}", admin_audit_org, methods=["GET"]),
    Route("/api/v1/orgs/{org}/audit-events", org_audit_events, methods=["GET"]),
]
