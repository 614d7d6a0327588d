"""GET /api/v1/sandbox/status: isolation tier, self-test, limits and process counts."""

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common import tenancy
from libs.common.authn import Principal, authenticate
from libs.common.errors import ApiError
from libs.common.http import json_response
from services.sandbox.context import runtime_of
from services.sandbox.store import processes as processes_store


async def sandbox_status(request: Request) -> Response:
    """The isolation tier, the start-up self-test, default limits, and processes by state."""
    principal = await authenticate(request)
    rt = runtime_of(request)
    async with rt.pool.acquire() as conn:
        counts = await processes_store.count_processes(conn)
    live = [
        p.snapshot()
        for p in rt.manager.processes.values()
        if await _may_inspect(rt, principal, p.spec.name)
    ]
    report = rt.enforcement
    return json_response(
        {
            "isolation": {
                "tier": rt.isolation_tier,
                "reason": rt.gvisor_reason or rt.tier_reason or None,
                "mechanism": rt.tier,  # what each process gets inside (under gVisor too)
                "mechanism_reason": rt.tier_reason or None,
                "gvisor": rt.gvisor,
                "enforces": report.to_dict(),
                "missing": report.missing(),
                "weak": report.weak,
                "untrusted_code_allowed": rt.untrusted_allowed(await rt.policy()),
            },
            "cgroups": rt.cgroups.to_dict(principal.is_platform_admin),
            "self_test": _self_test(rt, principal.is_platform_admin),
            "limits": rt.manager.limits().to_dict(),
            "idle_timeout_s": rt.settings.idle_timeout_s,
            "max_per_server": rt.settings.max_per_server,
            "max_total": rt.settings.max_total,
            "processes": {"by_state": counts, "on_this_replica": live},
        }
    )


async def _may_inspect(rt: Any, principal: Principal, server: str) -> bool:
    """Whether the caller may see a process of `server`.

    Its owning org's readers may; another org's process names are not shown (docs/TENANCY.md)."""
    if principal.is_platform_admin:
        return True
    try:
        ref = await rt.server_ref(server)
    except ApiError:
        return False
    return tenancy.may(principal, "read", ref, via_share=False)


def _self_test(rt: Any, detailed: bool) -> dict[str, Any] | None:
    """The start-up self-test; host paths and causes only for platform admins."""
    if rt.self_test is None:
        return None
    if detailed:
        return rt.self_test.to_dict()
    return {"ok": rt.self_test.ok, "checked_at": rt.self_test.checked_at}


routes = [Route("/api/v1/sandbox/status", sandbox_status, methods=["GET"])]
