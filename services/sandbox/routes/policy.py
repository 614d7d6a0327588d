"""The security policy and the module allowlist."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate, require_platform_admin
from libs.common.errors import Conflict
from libs.common.http import json_response, parse_body, validate
from services.sandbox import modules, scanning
from services.sandbox.context import runtime_of
from services.sandbox.policy import Policy, PolicyPatch, merged
from services.sandbox.schemas import ModulesPatch
from services.sandbox.store import modules as modules_store
from services.sandbox.store import policy as policy_store
from services.sandbox.validation import STDLIB_ALLOWED


async def get_policy(request: Request) -> Response:
    """The current security policy."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    return json_response(await runtime_of(request).policy())


async def patch_policy(request: Request) -> Response:
    """Change some policy fields."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    patch = await parse_body(request, PolicyPatch)
    rt = runtime_of(request)
    async with rt.pool.acquire() as conn, conn.transaction():
        doc = validate(Policy, merged(await rt.policy_cache.get(conn), patch))
        await policy_store.put_policy(conn, doc.model_dump(), principal.id)
    rt.policy_cache.set(doc)
    return json_response(doc)


async def list_modules(request: Request) -> Response:
    """The module allowlist (approved packages) and the always-allowed standard modules."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    async with runtime_of(request).pool.acquire() as conn:
        rows = await modules_store.list_modules(conn)
    return json_response({"items": [dict(r) for r in rows], "stdlib": sorted(STDLIB_ALLOWED)})


async def patch_modules(request: Request) -> Response:
    """Add modules to or remove them from the allowlist."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    body = await parse_body(request, ModulesPatch)
    async with runtime_of(request).pool.acquire() as conn, conn.transaction():
        for name in body.add:
            await modules_store.insert_module(conn, name, principal.id)
        for name in body.remove:
            await modules_store.delete_module(conn, name)
        rows = await modules_store.list_modules(conn)
    return json_response({"items": [dict(r) for r in rows], "stdlib": sorted(STDLIB_ALLOWED)})


routes = [
    Route("/api/v1/sandbox/policy", get_policy, methods=["GET"]),
    Route("/api/v1/sandbox/policy", patch_policy, methods=["PATCH"]),
    Route("/api/v1/sandbox/modules", list_modules, methods=["GET"]),
    Route("/api/v1/sandbox/modules", patch_modules, methods=["PATCH"]),
]


async def _admin(request: Request) -> None:
    """Module management is for platform admins."""
    require_platform_admin(await authenticate(request))


async def modules_enhanced(request: Request) -> Response:
    """The allowlist with install status, versions and the import names each package provides."""
    rt = runtime_of(request)
    await _admin(request)
    root = rt.layout.work_root
    async with rt.pool.acquire() as conn:
        rows = await modules_store.list_modules(conn)
    items = []
    for row in rows:
        target = modules.package_dir(root, row["name"])
        items.append(
            {
                **dict(row),
                "installed": target.is_dir(),
                "imports": sorted(modules.import_names(target)),
            }
        )
    return json_response({"items": items, "total": len(items)})


async def package_metadata(request: Request) -> Response:
    """Metadata of a package on the configured index (its newest wheel)."""
    await _admin(request)
    name = modules.check_name(request.path_params["name"])
    return json_response(await modules.metadata(name))


async def install_module(request: Request) -> Response:
    """Install an allowlisted module (wheels only) into its own read-only package directory."""
    await _admin(request)
    name = modules.check_name(request.path_params["name"])
    async with runtime_of(request).pool.acquire() as conn:
        allowed = {r["name"] for r in await modules_store.list_modules(conn)}
    if name not in allowed:
        raise Conflict(f"{name!r} is not on the module allowlist.", details={"name": name})
    row = await _install(request, name)
    return json_response(dict(row), 200 if row["status"] == "installed" else 502)


async def _install(request: Request, name: str):
    """Install and record the outcome."""
    rt = runtime_of(request)
    root = rt.layout.work_root
    advisories = scanning.advisories(rt.settings.osv_advisories_path)
    outcome = await modules.install(root, name, advisories)
    async with rt.pool.acquire() as conn:
        return await modules_store.set_module_install(
            conn, name, outcome["status"], outcome["version"], outcome["error"]
        )


async def sync_modules(request: Request) -> Response:
    """Install every allowlisted module that is not installed yet."""
    rt = runtime_of(request)
    await _admin(request)
    root = rt.layout.work_root
    async with rt.pool.acquire() as conn:
        rows = await modules_store.list_modules(conn)
    results = []
    for row in rows:
        if not modules.package_dir(root, row["name"]).is_dir():
            results.append(dict(await _install(request, row["name"])))
    return json_response({"installed": results})


routes += [
    Route("/api/v1/sandbox/modules/enhanced", modules_enhanced, methods=["GET"]),
    Route("/api/v1/sandbox/modules/sync", sync_modules, methods=["POST"]),
    Route("/api/v1/sandbox/modules/pypi/{name}", package_metadata, methods=["GET"]),
    Route("/api/v1/sandbox/modules/{name}/install", install_module, methods=["POST"]),
]
