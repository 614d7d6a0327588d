"""The security policy and the module allowlist."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate, require_platform_admin
from libs.common.http import json_response, parse_body, validate
from services.sandbox import store
from services.sandbox.policy import Policy, PolicyPatch, merged
from services.sandbox.schemas import ModulesPatch
from services.sandbox.validation import STDLIB_ALLOWED


async def get_policy(request: Request) -> Response:
    """The current security policy."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    return json_response(await request.state.runtime.policy())


async def patch_policy(request: Request) -> Response:
    """Change some policy fields."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    patch = await parse_body(request, PolicyPatch)
    rt = request.state.runtime
    async with request.state.pool.acquire() as conn, conn.transaction():
        doc = validate(Policy, merged(await rt.policy_cache.get(conn), patch))
        await store.put_policy(conn, doc.model_dump(), principal.id)
    rt.policy_cache.set(doc)
    return json_response(doc)


async def list_modules(request: Request) -> Response:
    """The module allowlist (approved packages) and the always-allowed standard modules."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    async with request.state.pool.acquire() as conn:
        rows = await store.list_modules(conn)
    return json_response({"items": [dict(r) for r in rows], "stdlib": sorted(STDLIB_ALLOWED)})


async def patch_modules(request: Request) -> Response:
    """Add modules to or remove them from the allowlist."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    body = await parse_body(request, ModulesPatch)
    async with request.state.pool.acquire() as conn, conn.transaction():
        for name in body.add:
            await store.insert_module(conn, name, principal.id)
        for name in body.remove:
            await store.delete_module(conn, name)
        rows = await store.list_modules(conn)
    return json_response({"items": [dict(r) for r in rows], "stdlib": sorted(STDLIB_ALLOWED)})


routes = [
    Route("/api/v1/sandbox/policy", get_policy, methods=["GET"]),
    Route("/api/v1/sandbox/policy", patch_policy, methods=["PATCH"]),
    Route("/api/v1/sandbox/modules", list_modules, methods=["GET"]),
    Route("/api/v1/sandbox/modules", patch_modules, methods=["PATCH"]),
]
