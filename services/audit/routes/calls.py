"""Tool-call records: list, one, stats and export (`/api/v1/audit/calls`, `/api/v1/audit/stats`)."""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate
from libs.common.errors import NotFound
from libs.common.http import json_response
from libs.common.pagination import list_query, page_body
from services.audit import exporting, queries, schemas
from services.audit.context import context_of
from services.audit.store import calls
from services.audit.visibility import scope_for


async def list_calls(request: Request) -> Response:
    """Tool calls the caller may see, filtered, sorted and paged."""
    scope = scope_for(await authenticate(request))
    query = list_query(request, sorts=calls.SORTS, filters=calls.FILTERS, default_sort="time")
    filters = queries.call_filters(request, query.q)
    async with context_of(request).pool.acquire() as conn:
        rows, total = await calls.list_calls(conn, filters, scope, query)
    return json_response(page_body([schemas.call_out(r) for r in rows], total, query))


async def get_call(request: Request) -> Response:
    """One tool call by id."""
    scope = scope_for(await authenticate(request))
    call_id = request.path_params["id"]
    row = None
    if _is_uuid(call_id):
        async with context_of(request).pool.acquire() as conn:
            row = await calls.get_call(conn, call_id, scope)
    if row is None:
        raise NotFound(f"No tool call {call_id!r}.", details={"id": call_id})
    return json_response(schemas.call_out(row))


async def call_stats(request: Request) -> Response:
    """Counts, error rate, p50/p95/p99 by server and by tool; top tools; busiest principals."""
    scope = scope_for(await authenticate(request))
    filters = queries.call_filters(request, request.query_params.get("q") or None)
    top = queries.int_param(request, "top", 10, 1, 100)
    async with context_of(request).pool.acquire() as conn:
        found = await calls.stats(conn, filters, scope, top)
    by_tool = [
        {"server": r["server"], "tool": r["tool"], **schemas.agg_out(r)} for r in found["by_tool"]
    ]
    return json_response(
        {
            "since": schemas.iso(filters.since),
            "until": schemas.iso(filters.until),
            **schemas.agg_out(found["overall"]),
            "by_server": [
                {"server": r["server"], **schemas.agg_out(r)} for r in found["by_server"]
            ],
            "by_tool": by_tool,
            "top_tools": by_tool[:top],
            "top_principals": [
                {
                    "principal_id": r["principal_id"],
                    "principal_name": r["principal_name"],
                    "calls": r["calls"],
                    "errors": r["errors"],
                }
                for r in found["principals"]
            ],
        }
    )


async def export_calls(request: Request) -> Response:
    """The filtered tool calls as CSV or NDJSON, streamed."""
    scope = scope_for(await authenticate(request))
    fmt = queries.export_format(request)
    query = list_query(request, sorts=calls.SORTS, filters=calls.FILTERS, default_sort="time")
    filters = queries.call_filters(request, query.q)
    return exporting.stream(
        context_of(request).pool,
        lambda conn: calls.iter_calls(conn, filters, scope, query.order_sql),
        fmt,
        schemas.CALL_CSV,
        schemas.call_out,
        "tool-calls",
    )


def _is_uuid(value: str) -> bool:
    """True for a UUID."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


routes = [
    Route("/api/v1/audit/calls", list_calls, methods=["GET"]),
    Route("/api/v1/audit/calls/export", export_calls, methods=["GET"]),
    Route("/api/v1/audit/calls/{id}", get_call, methods=["GET"]),
    Route("/api/v1/audit/stats", call_stats, methods=["GET"]),
    # MCPHubs' names for the same
    Route("/api/v1/audit", list_calls, methods=["GET"]),
]
