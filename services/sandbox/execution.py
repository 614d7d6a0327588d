"""One-shot sandboxed runs of Python code (code tools, test-code): result, output, limits hit."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from libs.common import outbox
from libs.common.events import EXECUTION_FINISHED, ExecutionFinished
from services.sandbox import cgroups, isolation, launchers, metrics
from services.sandbox.runtime import Runtime
from services.sandbox.store import SCHEMA

log = structlog.get_logger()

RESULT_MARK = b"@@SWITCHBOARD_RESULT@@"
OUTPUT_LIMIT = 1024 * 1024
SIGNAL_LIMITS = {signal.SIGXCPU: "cpu", signal.SIGXFSZ: "file_size"}


@dataclass(frozen=True)
class RunRequest:
    """What to run and under which limits."""

    code: str
    args: dict[str, Any]
    kind: str = "test"  # test | call
    tool: str | None = None
    server: str = "code"  # whose egress allowlist applies
    limits: isolation.Limits | None = None
    timeout_s: float | None = None
    packages: tuple[str, ...] = ()  # installed module dirs to mount read-only (the allowlist)


async def run_code(rt: Runtime, req: RunRequest) -> dict[str, Any]:
    """Run `main(**args)` from `req.code` in a fresh sandbox; publish sandbox.execution.finished."""
    await rt.require_isolation()
    limits = req.limits or rt.manager.limits()
    timeout = req.timeout_s or rt.settings.code_timeout_s
    key = f"run-{uuid.uuid4().hex}"
    root = rt.layout.work_root / "runs"
    workdir = root / key
    uid = isolation.host_uid(rt.settings, key)
    isolation.prepare_dir(workdir, uid)
    proxy = await rt.manager.proxy_for(key, req.server, isolation.proxy_socket(root, key))
    cgroup = cgroups.create(rt.cgroups, key, limits.memory_mb, limits.nproc)
    conf = isolation.Confinement(
        key=key,
        workdir=workdir,
        limits=limits,
        proxy_socket=proxy,
        service_packages=False,
        cgroup=cgroup,
    )
    if req.packages:
        paths = []
        for index, src in enumerate(req.packages):
            dest = f"{launchers.TOOL_PACKAGES}/{index}"
            conf.ro_binds.append((src, dest))
            paths.append(dest if rt.tier == isolation.BWRAP_USERNS else src)
        conf.python_path = ":".join(paths)
    runner = f"{launchers.SUPPORT_DIR}/runner.py"
    if rt.tier != isolation.BWRAP_USERNS:
        runner = str(rt.layout.support / "runner.py")
    argv = [rt.settings.python, "-S", runner]
    started = time.perf_counter()
    cmd = None
    try:
        cmd = launchers.build_command(rt.settings, rt.layout, rt.tier, conf, argv)
        outcome = await _spawn(cmd, orjson.dumps({"code": req.code, "args": req.args}), timeout)
    finally:
        for fd in cmd.pass_fds if cmd is not None else ():
            os.close(fd)
        await cgroups.remove(cgroup)
        await rt.manager.release_proxy(key)
        shutil.rmtree(workdir, ignore_errors=True)
    outcome["duration_ms"] = outcome.get("duration_ms") or round(
        (time.perf_counter() - started) * 1000, 2
    )
    outcome["isolation"] = rt.tier
    metrics.limit_kill(outcome["limit"])
    await _publish(rt, req, outcome)
    return outcome


async def _spawn(cmd: isolation.Command, job: bytes, timeout: float) -> dict[str, Any]:
    """Run the command with `job` on stdin; classify how it ended."""
    proc = await isolation.spawn(
        cmd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    timed_out = False
    try:
        async with asyncio.timeout(timeout):
            out, err = await isolation.communicate(proc, job, OUTPUT_LIMIT)
    except TimeoutError:
        timed_out = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = await isolation.communicate(proc, b"", OUTPUT_LIMIT)
    return _classify(proc.returncode, out, err, timed_out)


def _classify(code: int | None, out: bytes, err: bytes, timed_out: bool) -> dict[str, Any]:
    """The run's result from the runner's marked line, its exit status and stderr."""
    head, mark, tail = out.rpartition(RESULT_MARK)
    reply: dict[str, Any] = {}
    if mark:
        with contextlib.suppress(orjson.JSONDecodeError):
            reply = orjson.loads(tail.strip().splitlines()[0])
    sig = -code if code is not None and code < 0 else None
    if sig is None and code is not None and code > 128:
        sig = code - 128  # bwrap reports a child killed by a signal as 128 + signal
    limit = None
    if timed_out:
        limit = "timeout"
    elif sig is not None:
        limit = SIGNAL_LIMITS.get(sig, "memory" if sig == signal.SIGKILL else None)
    error = reply.get("error") or {}
    if error.get("type") == "MemoryError":
        limit = "memory"
    if error.get("type") == "BlockingIOError":  # EAGAIN from fork: RLIMIT_NPROC
        limit = "processes"
    if reply.get("ok"):
        outcome = "ok"
    elif reply:
        outcome = "error"
    elif timed_out:
        outcome = "timeout"
    elif sig is not None:
        outcome = "killed"
    else:  # ended without a result or a signal: the sandbox itself did not start the code
        outcome = "error"
        said = _last_lines(err)
        error = {
            "type": "NoResult",
            "message": f"exited with code {code}" + (f": {said}" if said else ""),
        }
    return {
        "outcome": outcome,
        "ok": bool(reply.get("ok")),
        "result": reply.get("result"),
        "error": error or None,
        "stdout": reply.get("stdout", head.decode(errors="replace")[-65536:]),
        "stderr": reply.get("stderr", err.decode(errors="replace")[-65536:]),
        "duration_ms": reply.get("duration_ms"),
        "memory_kb": reply.get("memory_kb"),
        "exit_code": code,
        "signal": sig,
        "limit": limit,
    }


def _last_lines(err: bytes, lines: int = 4) -> str:
    """The end of a process's stderr, on one line (what bwrap or the runner said last)."""
    text = err.decode(errors="replace").strip().splitlines()[-lines:]
    return " | ".join(line.strip() for line in text if line.strip())[-1000:]


async def _publish(rt: Runtime, req: RunRequest, outcome: dict[str, Any]) -> None:
    """sandbox.execution.finished through the outbox."""
    payload = ExecutionFinished(
        kind=req.kind,
        tool=req.tool,
        outcome=outcome["outcome"],
        exit_code=outcome["exit_code"],
        signal=outcome["signal"],
        limit=outcome["limit"],
        error_type=(outcome["error"] or {}).get("type"),
        duration_ms=outcome["duration_ms"],
        memory_kb=outcome["memory_kb"],
        isolation=rt.tier,
    )
    try:
        async with rt.pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, SCHEMA, EXECUTION_FINISHED.event(payload, source=SCHEMA))
    except Exception:
        log.exception("execution_event_not_stored", tool=req.tool)
