"""/api/v1/orgs/{org}/policies (and /api/v1/policies, the caller's org), approvals, CI evaluate."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate
from libs.common.http import json_response, no_content, parse_body
from libs.common.pagination import list_query, page_body
from services.registry import policies
from services.registry.context import Registry
from services.registry.schemas import ApprovalIn, CiEvaluate, PolicyCreate, PolicyFields
from services.registry.store import policies as store


def _reg(request: Request) -> Registry:
    """The registry's shared parts."""
    return request.state.registry


async def _org(request: Request, minimum: str) -> tuple[Registry, str, str]:
    """The registry, the org the path names (the caller's own without one) and the actor."""
    principal = await authenticate(request)
    reg = _reg(request)
    ref = request.path_params.get("org")
    return reg, await policies.org_for(reg, principal, ref, minimum), principal.id


async def list_policies(request: Request) -> Response:
    """A page of the org's policies, by priority (filters: action, target_type, enabled)."""
    reg, org, _ = await _org(request, "viewer")
    query = list_query(
        request, sorts=store.SORTS, filters=store.FILTERS, default_sort="priority",
        default_order="asc",
    )  # fmt: skip
    async with reg.pool.acquire() as conn:
        rows, total = await store.list_policies(conn, org, query)
    return json_response(page_body([policies.policy_out(r) for r in rows], total, query))


async def create_policy(request: Request) -> Response:
    """Add a policy to the org (admins and owners)."""
    reg, org, actor = await _org(request, "admin")
    body = await parse_body(request, PolicyCreate)
    async with reg.pool.acquire() as conn, conn.transaction():
        row = await policies.create(reg, conn, org, body, actor)
    return json_response(policies.policy_out(row), 201)


async def get_policy(request: Request) -> Response:
    """One policy of the org."""
    reg, org, _ = await _org(request, "viewer")
    async with reg.pool.acquire() as conn:
        row = await policies.get_or_404(conn, org, request.path_params["id"])
    return json_response(policies.policy_out(row))


async def update_policy(request: Request) -> Response:
    """Change a policy (PUT: the whole policy; PATCH: the fields given)."""
    reg, org, actor = await _org(request, "admin")
    whole = request.method == "PUT"
    body = await parse_body(request, PolicyCreate if whole else PolicyFields)
    async with reg.pool.acquire() as conn, conn.transaction():
        row = await policies.get_or_404(conn, org, request.path_params["id"])
        row = await policies.update(reg, conn, row, body, actor, whole=whole)
    return json_response(policies.policy_out(row))


async def delete_policy(request: Request) -> Response:
    """Delete a policy."""
    reg, org, actor = await _org(request, "admin")
    async with reg.pool.acquire() as conn, conn.transaction():
        row = await policies.get_or_404(conn, org, request.path_params["id"])
        await policies.delete(reg, conn, row, actor)
    return no_content()


async def list_approvals(request: Request) -> Response:
    """The versions the org approved (what REQUIRE_APPROVAL policies let through)."""
    reg, org, _ = await _org(request, "viewer")
    query = list_query(request, sorts=("created_at",))
    async with reg.pool.acquire() as conn:
        rows = await store.list_approvals(conn, [org])
    items = [policies.approval_out(r) for r in rows]
    return json_response(page_body(items[query.offset : query.offset + query.page_size],
                                   len(items), query))  # fmt: skip


async def approve_version(request: Request) -> Response:
    """Approve an MCP version for the org (`{"mcp", "version", "reason"?}`)."""
    reg, org, actor = await _org(request, "admin")
    body = await parse_body(request, ApprovalIn)
    async with reg.pool.acquire() as conn, conn.transaction():
        out = await policies.approve(reg, conn, org, body, actor)
    return json_response(out, 201)


async def withdraw_approval(request: Request) -> Response:
    """Withdraw the org's approval of an MCP version (`{"mcp", "version"}`)."""
    reg, org, actor = await _org(request, "admin")
    body = await parse_body(request, ApprovalIn)
    async with reg.pool.acquire() as conn, conn.transaction():
        await policies.withdraw(reg, conn, org, body, actor)
    return no_content()


async def evaluate_ci(request: Request) -> Response:
    """Evaluate MCP versions against the org's policies (token scope `ci:org:<slug>`)."""
    principal = await authenticate(request)
    body = await parse_body(request, CiEvaluate)
    reg = _reg(request)
    org = await policies.ci_org(reg, principal, body.org_id)
    async with reg.pool.acquire() as conn:
        return json_response(await policies.evaluate_ci(conn, org, body))


def _routes(prefix: str) -> list[Route]:
    """The policy routes under `prefix` (approvals before `{id}`)."""
    return [
        Route(prefix, list_policies, methods=["GET"]),
        Route(prefix, create_policy, methods=["POST"]),
        Route(f"{prefix}/approvals", list_approvals, methods=["GET"]),
        Route(f"{prefix}/approvals", approve_version, methods=["POST"]),
        Route(f"{prefix}/approvals", withdraw_approval, methods=["DELETE"]),
        Route(f"{prefix}/{{id}}", get_policy, methods=["GET"]),
        Route(f"{prefix}/{{id}}", update_policy, methods=["PUT", "PATCH"]),
        Route(f"{prefix}/{{id}}", delete_policy, methods=["DELETE"]),
    ]


routes = [
    *_routes("/api/v1/orgs/{org}/policies"),
    *_routes("/api/v1/policies"),
    Route("/api/v1/ci/evaluate", evaluate_ci, methods=["POST"]),
]
