"""Hosted server lifecycle: start, stop, restart, status, logs and the egress allowlist."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import orjson
from nats.aio.msg import Msg
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from libs.common import tenancy
from libs.common.authn import Principal, authenticate
from libs.common.errors import Forbidden, NotFound
from libs.common.http import json_response, parse_body, query_model, read_json, validate
from services.sandbox import approvals, approvers, egress_requests
from services.sandbox.context import runtime_of
from services.sandbox.logs import LEVELS
from services.sandbox.runtime import Runtime
from services.sandbox.schemas import HostsBody, HostsRemoval, LogsQuery, StopBody, check_name
from services.sandbox.store import hosts as hosts_store
from services.sandbox.store import processes as processes_store

SERVER = "/api/v1/sandbox/servers/{name}"
FOLLOW_MAX_S = 3600.0


async def _target(
    request: Request, permission: str, inspect: bool = False
) -> tuple[Runtime, Principal, str]:
    """Authenticate, check the caller's access to the server, and return the runtime and name.

    Access is as docs/TENANCY.md says: 404 for a server the caller may not see (another org's),
    403 for one it sees without `permission`. `inspect` (status, logs, allowed hosts): only
    through the owning org, not through a share."""
    principal = await authenticate(request)
    name = check_name(request.path_params["name"])
    rt = runtime_of(request)
    server = await rt.server_ref(name)
    if not tenancy.may(principal, "read", server, via_share=not inspect):
        raise NotFound(f"Server {name!r} is not registered.", details={"server": name})
    if not tenancy.may(principal, permission, server, via_share=not inspect):
        raise Forbidden(
            f"No grant gives {permission} on {name!r}.",
            details={"permission": permission, "server": name},
        )
    return rt, principal, name


async def start_server(request: Request) -> Response:
    """Start a hosted server now, on the replica owning it (it would start on its first call)."""
    rt, _, name = await _target(request, "write")
    await rt.require_isolation()
    return json_response(await rt.replicas.keyed("start", {"server": name}))


async def stop_server(request: Request) -> Response:
    """Stop every process of a server, wherever it runs: graceful within `timeout`."""
    rt, _, name = await _target(request, "write")
    body = StopBody() if not await request.body() else await parse_body(request, StopBody)
    data = {"server": name, "graceful": body.graceful, "timeout": body.timeout}
    answers = await rt.replicas.spread("stop", data)
    return json_response({"server": name, "processes": _processes(answers)})


async def restart_server(request: Request) -> Response:
    """Stop and start again with a fresh spec from the registry, on the owning replica."""
    rt, _, name = await _target(request, "write")
    await rt.require_isolation()
    rt.forget_spec(name)
    return json_response(await rt.replicas.keyed("restart", {"server": name}))


async def server_status(request: Request) -> Response:
    """The server's processes on every replica that owns one, and what each last stored."""
    rt, _, name = await _target(request, "read", inspect=True)
    answers = await rt.replicas.spread("status", {"server": name})
    async with runtime_of(request).pool.acquire() as conn:
        reported = await processes_store.list_processes(conn, name)
    live = _processes(answers)
    state = live[0]["state"] if live else (reported[0]["state"] if reported else "stopped")
    return json_response(
        {
            "server": name,
            "state": state,
            "running": any(a["running"] for a in answers),
            "processes": live,
            "owners": sorted({p["instance"] for p in live}),
            "reported": [dict(r) for r in reported],
            "isolation": rt.isolation_tier,
        }
    )


def _processes(answers: list[dict]) -> list[dict]:
    """Every replica's processes, running ones first."""
    procs = [p for a in answers for p in a.get("processes") or []]
    return sorted(procs, key=lambda p: (p["state"] != "running", p["key"]))


async def server_logs(request: Request) -> Response:
    """Log lines of a server from every owning replica; `follow=true` streams new ones (SSE)."""
    rt, _, name = await _target(request, "read", inspect=True)
    query = query_model(request, LogsQuery)
    data = {"server": name, "level": query.level, "limit": query.limit, "since": query.since}
    if not query.follow:
        lines = await _backlog(rt, data)
        return json_response({"server": name, "items": lines, "total": len(lines)})
    # subscribed before the backlog is read, so no line falls between the two
    queue: asyncio.Queue = asyncio.Queue(maxsize=1000)

    async def on_line(msg: Msg) -> None:
        with contextlib.suppress(asyncio.QueueFull, orjson.JSONDecodeError):
            queue.put_nowait(orjson.loads(msg.data))

    sub = await rt.bus.listen(rt.log_subject(name), on_line, owned=False)
    try:
        lines = await _backlog(rt, data)
    except BaseException:
        await sub.unsubscribe()
        raise
    return StreamingResponse(
        _follow(sub, queue, lines, query.level),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _backlog(rt: Runtime, data: dict) -> list[dict]:
    """The last `limit` matching lines over every owning replica, oldest first."""
    answers = await rt.replicas.spread("logs", data)
    lines = sorted((ln for a in answers for ln in a["items"]), key=lambda ln: ln["time"])
    return lines[-int(data["limit"]) :]


async def _follow(
    sub, queue: asyncio.Queue, first: list, level: str | None
) -> AsyncIterator[bytes]:
    """Send the backlog, then each new line (a comment every 15 s keeps proxies open)."""
    floor = LEVELS.index(level) if level in LEVELS else 0
    sent = {}  # instance → highest seq already sent from the backlog
    for line in first:
        sent[line["instance"]] = max(sent.get(line["instance"], 0), line["seq"])
    try:
        for line in first:
            yield b"data: " + orjson.dumps(line) + b"\n\n"
        async with asyncio.timeout(FOLLOW_MAX_S):
            while True:
                try:
                    line = await asyncio.wait_for(queue.get(), 15)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if line.get("seq", 0) <= sent.get(line.get("instance"), 0):
                    continue
                if LEVELS.index(line.get("level", "info")) >= floor:
                    yield b"data: " + orjson.dumps(line) + b"\n\n"
    except TimeoutError:
        return
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def list_allowed_hosts(request: Request) -> Response:
    """The server's egress allowlist."""
    rt, _, name = await _target(request, "read", inspect=True)
    return json_response({"server": name, "hosts": await rt.egress.allowed_hosts(name)})


async def add_allowed_hosts(request: Request) -> Response:
    """Ask for hosts on a server's egress allowlist: one network approval per host.

    Approved at once when the requester may decide it (201), else left for an approver (202)."""
    rt, principal, name = await _target(request, "write")
    body = await parse_body(request, HostsBody)
    rt.egress.check_hosts(body.hosts)
    decides = principal.is_platform_admin or approvers.may_decide(
        await rt.policy(), principal, await rt.request_org({"kind": "network", "server": name})
    )
    async with runtime_of(request).pool.acquire() as conn, conn.transaction():
        rows = await egress_requests.request_hosts(
            rt, conn, name, body.hosts, principal.id, decides
        )
        hosts = await hosts_store.list_allowed_hosts(conn, name)
    rt.egress.forget_hosts(name)
    requests = [approvals.approval_out(r) for r in rows]
    return json_response(
        {"server": name, "hosts": hosts, "requests": requests}, 201 if decides else 202
    )


async def remove_allowed_hosts(request: Request) -> Response:
    """Remove hosts from a server's egress allowlist, revoking the approvals that allowed them.

    The hosts come in the body {"hosts": [...]} or as ?host=."""
    rt, principal, name = await _target(request, "write")
    raw = request.query_params.getlist("host")
    body = (
        validate(HostsRemoval, {"hosts": raw})
        if raw
        else validate(HostsRemoval, await read_json(request))
    )
    async with runtime_of(request).pool.acquire() as conn, conn.transaction():
        await egress_requests.remove_hosts(conn, name, body.hosts, principal.id)
        hosts = await hosts_store.list_allowed_hosts(conn, name)
    rt.egress.forget_hosts(name)
    return json_response({"server": name, "hosts": hosts})


routes = [
    Route(f"{SERVER}/start", start_server, methods=["POST"]),
    Route(f"{SERVER}/stop", stop_server, methods=["POST"]),
    Route(f"{SERVER}/restart", restart_server, methods=["POST"]),
    Route(f"{SERVER}/status", server_status, methods=["GET"]),
    Route(f"{SERVER}/logs", server_logs, methods=["GET"]),
    Route(f"{SERVER}/allowed-hosts", list_allowed_hosts, methods=["GET"]),
    Route(f"{SERVER}/allowed-hosts", add_allowed_hosts, methods=["POST"]),
    Route(f"{SERVER}/allowed-hosts", remove_allowed_hosts, methods=["DELETE"]),
]
