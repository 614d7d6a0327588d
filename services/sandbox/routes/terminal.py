"""/ws/terminal: an interactive shell inside a sandbox for platform admins, when policy allows."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import termios
import time
import uuid

import orjson
import structlog
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from libs.common import outbox
from libs.common.authn import authenticate, require_platform_admin
from libs.common.errors import ApiError
from libs.common.events import TERMINAL_CLOSED, TERMINAL_OPENED, TerminalSession
from libs.common.trusted_hosts import refuse_websocket_origin
from services.sandbox import isolation, launchers
from services.sandbox.context import runtime_of
from services.sandbox.runtime import Runtime
from services.sandbox.store import SCHEMA

log = structlog.get_logger()
KEY = "terminal"
MAX_SESSION_S = 3600.0
MAX_DIMENSION = 1000


def _dimension(value: object, default: int) -> int | None:
    """A column or row count from 1 to MAX_DIMENSION (`default` when absent), None when invalid."""
    if value is None:
        return default
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMENSION:
        return None
    return value


def resize(master: int, cols: int, rows: int) -> None:
    """Set the PTY's window size (the shell gets SIGWINCH)."""
    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


async def _audit(rt: Runtime, kind, payload: TerminalSession, actor: str) -> None:
    """Store the session event through the outbox."""
    async with rt.pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, SCHEMA, kind.event(payload, source=SCHEMA, actor=actor))


async def terminal(ws: WebSocket) -> None:
    """Authenticate, check policy, then bridge the socket to a shell on a PTY in a sandbox."""
    rt = runtime_of(ws)
    if await refuse_websocket_origin(ws, rt.settings.public_url, rt.settings.allowed_origins):
        return
    try:
        principal = await authenticate(ws)
        require_platform_admin(principal)
        policy = await rt.policy()
        if not policy.terminal_enabled:
            await ws.close(code=4403, reason="the terminal is disabled by policy")
            return
        await rt.require_isolation()
    except ApiError as exc:
        await ws.close(code=4401 if exc.status == 401 else 4403, reason=exc.code)
        return
    # the mcphubs seed's ?cols=120&rows=30 (its ?token= is read by authenticate)
    cols = _dimension(ws.query_params.get("cols"), 80)
    rows = _dimension(ws.query_params.get("rows"), 24)
    if cols is None or rows is None:
        await ws.close(code=4400, reason="VALIDATION_ERROR")
        return
    await ws.accept()
    session = str(uuid.uuid4())
    started = time.monotonic()
    await _audit(rt, TERMINAL_OPENED, TerminalSession(session, principal.id, rt.tier), principal.id)
    master, slave = os.openpty()
    resize(master, cols, rows)
    proc, fds = await _spawn_shell(rt, slave)
    os.close(slave)
    typed = 0
    try:
        typed = await _bridge(ws, master, proc)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        os.close(master)
        for fd in fds:
            os.close(fd)
        closed = TerminalSession(
            session,
            principal.id,
            rt.tier,
            round(time.monotonic() - started, 3),
            typed,
            proc.returncode,
        )
        await _audit(rt, TERMINAL_CLOSED, closed, principal.id)
        with contextlib.suppress(Exception):
            await ws.close()


async def _spawn_shell(rt: Runtime, tty: int) -> tuple[asyncio.subprocess.Process, tuple[int, ...]]:
    """A shell in a sandbox whose /work is the workspace."""
    policy = await rt.policy()
    workspace = rt.workspace.root
    uid = isolation.host_uid(rt.settings, KEY)
    if uid is not None:
        os.chown(workspace, uid, uid)
    conf = isolation.Confinement(
        key=KEY, workdir=workspace, limits=policy.limits(), env={"TERM": "xterm-256color"}
    )
    conf.limits = isolation.Limits(
        policy.memory_mb, int(MAX_SESSION_S), policy.nofile, policy.nproc, policy.fsize_mb
    )
    cmd = launchers.build_command(rt.settings, rt.layout, rt.tier, conf, ["/bin/sh", "-i"])
    proc = await isolation.spawn(cmd, stdin=tty, stdout=tty, stderr=tty)
    return proc, cmd.pass_fds


async def _bridge(ws: WebSocket, master: int, proc: asyncio.subprocess.Process) -> int:
    """Copy socket input to the PTY and PTY output to the socket until either side ends."""
    loop = asyncio.get_running_loop()
    output: asyncio.Queue[bytes] = asyncio.Queue()
    typed = 0

    def readable() -> None:
        try:
            data = os.read(master, 65536)
        except OSError:
            data = b""
        output.put_nowait(data)
        if not data:
            loop.remove_reader(master)

    loop.add_reader(master, readable)

    async def pump_out() -> None:
        while data := await output.get():
            await ws.send_text(data.decode(errors="replace"))

    async def pump_in() -> None:
        nonlocal typed
        while True:
            text = await ws.receive_text()
            if text.startswith("{"):
                with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
                    doc = orjson.loads(text)
                    if doc.get("type") == "resize":  # {"type":"resize","cols":…,"rows":…}
                        cols, rows = _dimension(doc.get("cols"), 0), _dimension(doc.get("rows"), 0)
                        if cols and rows:
                            resize(master, cols, rows)
                    text = doc.get("data", "") if doc.get("type") == "input" else ""
            typed += len(text)
            os.write(master, text.encode())

    tasks = [
        asyncio.create_task(pump_out()),
        asyncio.create_task(pump_in()),
        asyncio.create_task(proc.wait()),
    ]
    try:
        await asyncio.wait(tasks, timeout=MAX_SESSION_S, return_when=asyncio.FIRST_COMPLETED)
    except WebSocketDisconnect:
        pass
    finally:
        loop.remove_reader(master)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await task
    return typed


routes = [
    WebSocketRoute("/ws/terminal", terminal),
    WebSocketRoute("/api/v1/terminal/ws", terminal),  # the mcphubs seed's /api/terminal/ws
]
