"""Hosted server lifecycle: start, stop, restart, status, logs and the egress allowlist."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from libs.common.authn import Principal, authenticate, require_grant
from libs.common.http import json_response, parse_body, query_model, read_json, validate
from services.sandbox import store
from services.sandbox.runtime import Runtime
from services.sandbox.schemas import HostsBody, LogsQuery, StopBody, check_name

SERVER = "/api/v1/sandbox/servers/{name}"
FOLLOW_MAX_S = 3600.0


async def _target(request: Request, permission: str) -> tuple[Runtime, Principal, str]:
    """Authenticate, check the grant on the server, and return the runtime and name."""
    principal = await authenticate(request)
    name = check_name(request.path_params["name"])
    require_grant(principal, permission, name)
    return request.state.runtime, principal, name


async def start_server(request: Request) -> Response:
    """Start a hosted server now (it would otherwise start on its first call)."""
    rt, _, name = await _target(request, "write")
    rt.require_isolation()
    proc = await rt.manager.ensure(await rt.spec(name))
    return json_response(proc.snapshot())


async def stop_server(request: Request) -> Response:
    """Stop every process of a server: graceful (stdin closed, SIGTERM) within `timeout`."""
    rt, _, name = await _target(request, "write")
    body = StopBody() if not await request.body() else await parse_body(request, StopBody)
    await rt.manager.stop(name, body.graceful, body.timeout)
    return json_response({"server": name, "processes": rt.manager.status(name)})


async def restart_server(request: Request) -> Response:
    """Stop and start again with a fresh spec from the registry."""
    rt, _, name = await _target(request, "write")
    rt.require_isolation()
    await rt.manager.stop(name, graceful=True, timeout=5.0)
    rt.forget_spec(name)
    proc = await rt.manager.ensure(await rt.spec(name))
    return json_response(proc.snapshot())


async def server_status(request: Request) -> Response:
    """This replica's processes of a server, and what every replica last reported."""
    rt, _, name = await _target(request, "read")
    async with request.state.pool.acquire() as conn:
        reported = await store.list_processes(conn, name)
    local = rt.manager.status(name)
    state = local[0]["state"] if local else (reported[0]["state"] if reported else "stopped")
    return json_response(
        {
            "server": name,
            "state": state,
            "running": rt.manager.running(name),
            "processes": local,
            "reported": [dict(r) for r in reported],
            "isolation": rt.tier,
        }
    )


async def server_logs(request: Request) -> Response:
    """Log lines (stderr) of a server; `follow=true` streams new ones as server-sent events."""
    rt, _, name = await _target(request, "read")
    query = query_model(request, LogsQuery)
    buf = rt.manager.log_buffer(name)
    lines = buf.query(query.level, query.limit, query.since)
    if not query.follow:
        return json_response({"server": name, "items": lines, "total": len(lines)})
    return StreamingResponse(
        _follow(buf, lines, query.level),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _follow(buf, first: list, level: str | None) -> AsyncIterator[bytes]:
    """Send the backlog, then each new line (a comment every 15 s keeps proxies open)."""
    from services.sandbox.processes import LEVELS

    floor = LEVELS.index(level) if level in LEVELS else 0
    queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
    buf.followers.add(queue)
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
                if LEVELS.index(line["level"]) >= floor:
                    yield b"data: " + orjson.dumps(line) + b"\n\n"
    except TimeoutError:
        return
    finally:
        buf.followers.discard(queue)


async def list_allowed_hosts(request: Request) -> Response:
    """The server's egress allowlist."""
    rt, _, name = await _target(request, "read")
    return json_response({"server": name, "hosts": await rt.allowed_hosts(name)})


async def add_allowed_hosts(request: Request) -> Response:
    """Allow hosts for a server's egress (approving any pending network requests for them)."""
    rt, principal, name = await _target(request, "write")
    body = await parse_body(request, HostsBody)
    async with request.state.pool.acquire() as conn, conn.transaction():
        for host in body.hosts:
            await store.insert_allowed_host(conn, name, host, principal.id)
        hosts = await store.list_allowed_hosts(conn, name)
    rt.forget_hosts(name)
    return json_response({"server": name, "hosts": hosts}, 201)


async def remove_allowed_hosts(request: Request) -> Response:
    """Remove hosts from a server's egress allowlist (body {"hosts": [...]} or ?host=)."""
    rt, _, name = await _target(request, "write")
    raw = request.query_params.getlist("host")
    body = (
        validate(HostsBody, {"hosts": raw})
        if raw
        else validate(HostsBody, await read_json(request))
    )
    async with request.state.pool.acquire() as conn, conn.transaction():
        for host in body.hosts:
            await store.delete_allowed_host(conn, name, host)
        hosts = await store.list_allowed_hosts(conn, name)
    rt.forget_hosts(name)
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
