"""One hosted stdio MCP server's process: started in its sandbox, watched, restarted, stopped.

Over 300 lines: it is one class, HostedProcess, whose steps (spawn, handshake, watch, backoff,
stop, kill) share its state; the JSON-RPC framing (framing.py), the log buffers (logs.py) and
the manager of all processes (processes.py) are apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from pathlib import Path
from typing import Any, Protocol

import structlog

from libs.common.errors import UpstreamError
from services.sandbox import cgroups, isolation, launchers, metrics
from services.sandbox.cgroups import CgroupSupport
from services.sandbox.framing import STREAM_LIMIT, StdioChannel
from services.sandbox.layout import Layout
from services.sandbox.logs import SecretMask, cut, read_lines
from services.sandbox.server_spec import ServerSpec
from services.sandbox.settings import SandboxSettings

log = structlog.get_logger()

PROTOCOL_VERSION = "2025-06-18"
STARTING, RUNNING, STOPPING, STOPPED = "starting", "running", "stopping", "stopped"
CRASHED, BACKOFF, FAILED = "crashed", "backoff", "failed"


class Supervisor(Protocol):
    """What a hosted process needs from the manager of all of them."""

    settings: SandboxSettings
    layout: Layout
    tier: str
    cgroups: CgroupSupport

    def limits(self) -> isolation.Limits:
        """Default rlimits of a hosted server."""

    def check_capacity(self, starting: HostedProcess) -> None:
        """Refuse a start over the caps."""

    async def proxy_for(self, key: str, server: str, path: Path) -> Path | None:
        """The egress proxy socket for a process."""

    async def release_proxy(self, key: str) -> None:
        """Close a process's proxy socket."""

    async def report_status(self, snapshot: dict[str, Any]) -> None:
        """Hand a status change to the service."""

    def log(self, server: str, stream: str, text: str) -> None:
        """Record a log line."""


class HostedProcess:
    """One sandboxed stdio MCP server speaking newline-delimited JSON-RPC."""

    def __init__(self, manager: Supervisor, key: str, spec: ServerSpec) -> None:
        self.manager = manager
        self.key = key
        self.spec = spec
        self.state = STOPPED
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.started_at: float | None = None
        self.last_used = time.monotonic()
        self.restarts = 0
        self.exit_code: int | None = None
        self.last_stderr: str | None = None  # what it said last on stderr
        self.reason: str | None = None
        self.init_result: dict[str, Any] | None = None
        self.backoff_task: asyncio.Task | None = None
        self.channel = StdioChannel(spec.name)
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task] = []
        self._expected_exit = False
        self.calls = 0
        self.cgroup: Path | None = None
        self.mask = SecretMask(spec.env.values())

    @property
    def settings(self) -> SandboxSettings:
        """The service settings."""
        return self.manager.settings

    @property
    def busy(self) -> bool:
        """True while a request waits for its reply."""
        return self.channel.pending > 0

    def snapshot(self) -> dict[str, Any]:
        """Status view."""
        uptime = time.monotonic() - self.started_at if self.started_at and self.pid else None
        return {
            "server": self.spec.name,
            "key": self.key,
            "state": self.state,
            "pid": self.pid,
            "restarts": self.restarts,
            "exit_code": self.exit_code,
            "reason": self.reason,
            "uptime_s": round(uptime, 3) if uptime is not None else None,
            "idle_s": round(time.monotonic() - self.last_used, 3),
            "calls": self.calls,
            "pending": self.channel.pending,
            "isolation": self.manager.tier,
        }

    async def _set_state(self, state: str, reason: str | None = None, **extra: Any) -> None:
        """Change state and report it."""
        previous, self.state = self.state, state
        self.reason = reason
        await self.manager.report_status(
            {**self.snapshot(), "previous": previous, "backoff_s": extra.get("backoff_s")}
        )

    async def ensure_running(self) -> None:
        """Start the process if it is not running (one start at a time)."""
        if self.state == RUNNING:
            return
        if self.state == BACKOFF and self.backoff_task is not None:
            await asyncio.shield(self.backoff_task)
            if self.state == RUNNING:
                return
        async with self._lock:
            if self.state == RUNNING:
                return
            await self._start()

    async def _spawn(self) -> None:
        """Start the sandboxed process (FAILED, and UpstreamError, when it cannot start)."""
        workdir = self.manager.layout.work_root / "servers" / safe_name(self.key)
        uid = isolation.host_uid(self.settings, self.key)
        isolation.prepare_dir(workdir, uid)
        proxy = await self.manager.proxy_for(
            self.key, self.spec.name, isolation.proxy_socket(workdir.parent, self.key)
        )
        self.mask = SecretMask(self.spec.env.values())  # what it prints of them is masked
        limits = self.manager.limits()
        self.cgroup = cgroups.create(self.manager.cgroups, self.key, limits.memory_mb, limits.nproc)
        conf = isolation.Confinement(
            key=self.key,
            workdir=workdir,
            limits=limits,
            env=dict(self.spec.env),
            proxy_socket=proxy,
            cgroup=self.cgroup,
        )
        self._expected_exit = False
        cmd = None
        try:
            argv = [self.spec.command, *self.spec.args]
            cmd = launchers.build_command(
                self.settings, self.manager.layout, self.manager.tier, conf, argv
            )
            self.proc = await isolation.spawn(
                cmd,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=STREAM_LIMIT,
            )
        except OSError as exc:
            await self._release_cgroup()
            await self._set_state(FAILED, f"spawn failed: {exc}")
            raise UpstreamError(f"Server {self.spec.name!r} could not be started.") from None
        finally:
            for fd in cmd.pass_fds if cmd is not None else ():
                os.close(fd)

    async def _start(self) -> None:
        """Spawn the sandbox, read its streams, and perform the MCP initialize handshake."""
        self.manager.check_capacity(self)
        t0 = time.monotonic()
        try:
            await self._launch()
        except Exception:
            metrics.started(False)
            raise
        metrics.started(True, time.monotonic() - t0)

    async def _launch(self) -> None:
        """STARTING, spawn, the handshake, RUNNING (FAILED, and an error, when it cannot)."""
        await self._set_state(STARTING)
        await self._spawn()
        assert self.proc is not None and self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.channel.attach(self.proc.stdin)
        self.pid = self.proc.pid
        self.started_at = time.monotonic()
        self.exit_code = None
        self.last_stderr = None
        self._tasks = [
            asyncio.create_task(self.channel.read(self.proc.stdout, self._stdout_text)),
            asyncio.create_task(
                read_lines(self.proc.stderr, self.settings.log_line_bytes, self._stderr_line)
            ),
            asyncio.create_task(self._watch()),
        ]
        try:
            self.init_result = await self._request(
                "initialize",
                {
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "switchboard-sandbox", "version": "0.1.0"},
                },
                self.settings.start_timeout_s,
            )
            await self.channel.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        except Exception as exc:
            await self._start_failed(exc)
        self.last_used = time.monotonic()
        await self._set_state(RUNNING)

    async def _start_failed(self, exc: Exception) -> None:
        """Kill a process whose handshake failed; FAILED, saying why (its exit and stderr)."""
        assert self.proc is not None
        with contextlib.suppress(TimeoutError):  # a broken pipe: the exit is on its way
            async with asyncio.timeout(0.5):
                await self.proc.wait()
        exited = self.proc.returncode is not None
        if exited and self._tasks:  # what it said on stderr says why (bwrap's refusal)
            await asyncio.wait({self._tasks[1]}, timeout=1)
        code, said = self.proc.returncode, self.last_stderr
        await self._kill("initialize failed")
        if not exited:
            await self._set_state(FAILED, "initialize failed")
            raise exc
        why = f"exited with code {code} while starting" + (f": {said}" if said else "")
        await self._set_state(FAILED, why)
        raise UpstreamError(
            f"Server {self.spec.name!r} {why}",
            details={"server": self.spec.name, "exit_code": code, "stderr": said},
        ) from exc

    async def _request(self, method: str, params: dict[str, Any], timeout: float) -> Any:
        """Send a request of our own and return its result (errors raise)."""
        reply = await self.forward(
            {"jsonrpc": "2.0", "id": 0, "method": method, "params": params}, timeout
        )
        if "error" in reply:
            raise UpstreamError(
                f"{self.spec.name} answered {method} with an error.",
                details={"rpc_error": reply["error"]},
            )
        return reply.get("result")

    async def forward(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one JSON-RPC request under a private id and return the reply with the caller's."""
        if self.proc is None or self.proc.returncode is not None:
            raise UpstreamError(f"Server {self.spec.name!r} is not running.")
        self.calls += 1
        try:
            return await self.channel.forward(message, timeout)
        finally:
            self.last_used = time.monotonic()

    async def notify(self, message: dict[str, Any]) -> None:
        """Pass a notification through."""
        await self.channel.send(message)

    def _stdout_text(self, text: str) -> None:
        """Log what it printed on stdout that is not JSON-RPC (cut, secrets masked)."""
        self.manager.log(
            self.spec.name, "stdout", self.mask(cut(text, self.settings.log_line_bytes))
        )

    def _stderr_line(self, text: str) -> None:
        """Log one stderr line (secrets masked); remember the last one that says something."""
        text = self.mask(text.rstrip())
        if text.strip():
            self.last_stderr = text.strip()[-500:]
        self.manager.log(self.spec.name, "stderr", text)

    async def _watch(self) -> None:
        """Wait for the exit; an unexpected one is a crash, restarted with backoff."""
        assert self.proc is not None
        code = await self.proc.wait()
        self.exit_code = code
        self.pid = None
        await self._release_cgroup()
        if self._tasks:  # what it said last on stderr says why (bwrap's refusal, a traceback)
            await asyncio.wait({self._tasks[1]}, timeout=1)
        said = f": {self.last_stderr}" if self.last_stderr else ""
        self.channel.fail_all(
            UpstreamError(
                f"Server {self.spec.name!r} exited (code {code}){said}",
                details={"server": self.spec.name, "exit_code": code, "stderr": self.last_stderr},
            )
        )
        if self._expected_exit:
            return
        self.manager.log(self.spec.name, "system", f"process exited unexpectedly with code {code}")
        await self._set_state(CRASHED, f"exited with code {code}{said}")
        self.restarts += 1
        if self.restarts > self.settings.max_restarts:
            await self._set_state(FAILED, f"crashed {self.restarts} times; not restarting")
            return
        delay = min(
            self.settings.backoff_base_s * 2 ** (self.restarts - 1), self.settings.backoff_max_s
        )
        await self._set_state(BACKOFF, f"restarting in {delay}s", backoff_s=delay)
        metrics.RESTARTS.inc()
        self.backoff_task = asyncio.create_task(self._restart_after(delay))

    async def _restart_after(self, delay: float) -> None:
        """Sleep the backoff, then start again (a failure is logged; the next call retries)."""
        await asyncio.sleep(delay)
        async with self._lock:
            if self.state != BACKOFF:
                return
            try:
                await self._start()
            except Exception as exc:
                log.warning("sandbox_restart_failed", server=self.spec.name, error=str(exc))

    async def stop(
        self, graceful: bool = True, timeout: float = 5.0, reason: str = "stopped"
    ) -> None:
        """Stop: close stdin and wait (graceful), then SIGTERM, then SIGKILL the process group."""
        if self.backoff_task is not None:
            self.backoff_task.cancel()
            self.backoff_task = None
        if self.proc is None or self.proc.returncode is not None:
            if self.state != STOPPED:
                await self._set_state(STOPPED, reason)
            return
        await self._set_state(STOPPING, reason)
        self._expected_exit = True
        proc = self.proc
        if graceful:
            with contextlib.suppress(Exception):
                assert proc.stdin is not None
                proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout / 2):
                    await proc.wait()
            if proc.returncode is None:
                signal_group(proc.pid, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout / 2):
                        await proc.wait()
        await self._kill(reason)
        await self._set_state(STOPPED, reason)

    def kill_group(self) -> None:
        """SIGKILL the sandbox's process group now (the watcher then restarts it)."""
        if self.proc is not None:
            signal_group(self.proc.pid, signal.SIGKILL)

    async def _kill(self, reason: str) -> None:
        """SIGKILL the whole process group and reap it."""
        self._expected_exit = True
        if self.proc is not None:
            signal_group(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.proc.wait()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self.pid = None
        await self._release_cgroup()
        await self.manager.release_proxy(self.key)

    async def _release_cgroup(self) -> None:
        """Kill what is left in the sandbox's cgroup and remove it (once)."""
        cgroup, self.cgroup = self.cgroup, None
        await cgroups.remove(cgroup)


def signal_group(pid: int, sig: int) -> None:
    """Signal the process group the sandbox leads (it was started in a new session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def safe_name(key: str) -> str:
    """A file-name-safe form of a process key."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)[:120]
