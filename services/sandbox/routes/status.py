"""GET /api/v1/sandbox/status: isolation tier, self-test, limits and process counts."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate
from libs.common.http import json_response
from services.sandbox import store


async def sandbox_status(request: Request) -> Response:
    """The isolation tier, the start-up self-test, default limits, and processes by state."""
    await authenticate(request)
    rt = request.state.runtime
    async with request.state.pool.acquire() as conn:
        counts = await store.count_processes(conn)
    live = [p.snapshot() for p in rt.manager.processes.values()]
    return json_response(
        {
            "isolation": {
                "tier": rt.isolation_tier,
                "reason": rt.gvisor_reason or rt.tier_reason or None,
                "mechanism": rt.tier,  # what each process gets inside (under gVisor too)
                "mechanism_reason": rt.tier_reason or None,
                "gvisor": rt.gvisor,
                "untrusted_code_allowed": rt.tier != "none"
                or rt.gvisor
                or rt.settings.allow_unisolated,
            },
            "self_test": rt.self_test.to_dict() if rt.self_test is not None else None,
            "limits": rt.manager.limits().to_dict(),
            "idle_timeout_s": rt.settings.idle_timeout_s,
            "max_per_server": rt.settings.max_per_server,
            "max_total": rt.settings.max_total,
            "processes": {"by_state": counts, "on_this_replica": live},
        }
    )


routes = [Route("/api/v1/sandbox/status", sandbox_status, methods=["GET"])]
