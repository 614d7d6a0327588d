"""Hosted stdio MCP servers: one shared sandboxed process per server, started lazily, supervised."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from libs.common.errors import Conflict, Unavailable, UpstreamError, UpstreamTimeout
from services.sandbox import cgroups, isolation
from services.sandbox.cgroups import CgroupSupport
from services.sandbox.layout import Layout
from services.sandbox.logs import LineSplitter, LogBuffer, SecretMask, cut
from services.sandbox.settings import SandboxSettings

log = structlog.get_logger()

PROTOCOL_VERSION = "2025-06-18"
STARTING, RUNNING, STOPPING, STOPPED = "starting", "running", "stopping", "stopped"
CRASHED, BACKOFF, FAILED = "crashed", "backoff", "failed"
STREAM_LIMIT = 16 * 1024 * 1024

StatusHook = Callable[[dict[str, Any]], Awaitable[None]]
LogHook = Callable[[dict[str, Any]], Awaitable[None]]
ProxyHook = Callable[[str, Path], Awaitable[Path | None]]


@dataclass(frozen=True)
class ServerSpec:
    """What the registry says about a stdio server (env decrypted, passed only to the process)."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float | None = None
    per_user: bool = False
    org: str | None = None

    @classmethod
    def from_view(cls, view: dict[str, Any]) -> ServerSpec:
        """Build from a registry snapshot server view."""
        return cls(
            name=view["name"],
            command=view.get("command") or "",
            args=tuple(view.get("args") or ()),
            env={str(k): str(v) for k, v in (view.get("env") or {}).items()},
            timeout_s=view.get("timeout_s"),
            per_user=bool(view.get("per_user")),
            org=view.get("org"),
        )


class HostedProcess:
    """One sandboxed stdio MCP server speaking newline-delimited JSON-RPC."""

    def __init__(self, manager: ProcessManager, key: str, spec: ServerSpec) -> None:
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
        self._pending: dict[int, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._write_lock = asyncio.Lock()
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
            "pending": len(self._pending),
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

    async def _start(self) -> None:
        """Spawn the sandbox, read its streams, and perform the MCP initialize handshake."""
        self.manager.check_capacity(self)
        await self._set_state(STARTING)
        workdir = self.manager.layout.work_root / "servers" / _safe(self.key)
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
            cmd = isolation.build_command(
                self.settings,
                self.manager.layout,
                self.manager.tier,
                conf,
                [self.spec.command, *self.spec.args],
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
        self.pid = self.proc.pid
        self.started_at = time.monotonic()
        self.exit_code = None
        self.last_stderr = None
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
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
            await self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        except Exception as exc:
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
                raise
            why = f"exited with code {code} while starting" + (f": {said}" if said else "")
            await self._set_state(FAILED, why)
            raise UpstreamError(
                f"Server {self.spec.name!r} {why}",
                details={"server": self.spec.name, "exit_code": code, "stderr": said},
            ) from exc
        self.last_used = time.monotonic()
        await self._set_state(RUNNING)

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
        own_id = next(self._ids)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[own_id] = future
        self.calls += 1
        try:
            await self._send({**message, "id": own_id})
            async with asyncio.timeout(timeout):
                reply = await future
        except TimeoutError:
            with contextlib.suppress(Exception):
                await self._send(
                    {
                        "jsonrpc": "2.0",
                        "method": "notifications/cancelled",
                        "params": {"requestId": own_id, "reason": "timeout"},
                    }
                )
            raise UpstreamTimeout(
                f"Server {self.spec.name!r} did not answer in {timeout}s.",
                details={"server": self.spec.name},
            ) from None
        finally:
            self._pending.pop(own_id, None)
            self.last_used = time.monotonic()
        return {**reply, "id": message.get("id")}

    async def notify(self, message: dict[str, Any]) -> None:
        """Pass a notification through."""
        await self._send(message)

    async def _send(self, message: dict[str, Any]) -> None:
        """Write one line to the process's stdin."""
        assert self.proc is not None and self.proc.stdin is not None
        async with self._write_lock:
            try:
                self.proc.stdin.write(orjson.dumps(message) + b"\n")
                await self.proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                raise UpstreamError(f"Server {self.spec.name!r} closed its input.") from None

    async def _read_stdout(self) -> None:
        """Dispatch replies; answer the server's own requests with method-not-found."""
        assert self.proc is not None and self.proc.stdout is not None
        stream = self.proc.stdout
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line over the limit
                self.manager.log(self.spec.name, "stdout", "a line over 16 MiB was dropped")
                continue
            if not raw:
                return
            try:
                msg = orjson.loads(raw)
            except orjson.JSONDecodeError:
                text = cut(raw.decode(errors="replace").rstrip(), self.settings.log_line_bytes)
                self.manager.log(self.spec.name, "stdout", self.mask(text))
                continue
            if not isinstance(msg, dict):
                continue
            if "method" in msg and "id" in msg:
                with contextlib.suppress(Exception):
                    await self._send(
                        {
                            "jsonrpc": "2.0",
                            "id": msg["id"],
                            "error": {"code": -32601, "message": "Not supported by the host."},
                        }
                    )
                continue
            future = self._pending.get(msg.get("id")) if "id" in msg else None
            if future is not None and not future.done():
                future.set_result(msg)

    async def _read_stderr(self) -> None:
        """Every stderr line is a log line (cut to SANDBOX_LOG_LINE_BYTES while reading)."""
        assert self.proc is not None and self.proc.stderr is not None
        lines = LineSplitter(self.settings.log_line_bytes)
        while chunk := await self.proc.stderr.read(65536):
            for text in lines.feed(chunk):
                self._stderr_line(text)
        for text in lines.close():
            self._stderr_line(text)

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
        for future in self._pending.values():
            if not future.done():
                future.set_exception(
                    UpstreamError(
                        f"Server {self.spec.name!r} exited (code {code}){said}",
                        details={
                            "server": self.spec.name,
                            "exit_code": code,
                            "stderr": self.last_stderr,
                        },
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
                _signal_group(proc.pid, signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout / 2):
                        await proc.wait()
        await self._kill(reason)
        await self._set_state(STOPPED, reason)

    async def _kill(self, reason: str) -> None:
        """SIGKILL the whole process group and reap it."""
        self._expected_exit = True
        if self.proc is not None:
            _signal_group(self.proc.pid, signal.SIGKILL)
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


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group the sandbox leads (it was started in a new session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _safe(key: str) -> str:
    """A file-name-safe form of a process key."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)[:120]


class ProcessManager:
    """All hosted processes of this replica: lazy start, sharing, caps, idle stop, health pings."""

    def __init__(
        self,
        settings: SandboxSettings,
        layout: Layout,
        tier: str,
        *,
        on_status: StatusHook,
        on_log: LogHook | None = None,
        proxy: Any = None,
        cgroups: CgroupSupport | None = None,
    ) -> None:
        self.settings = settings
        self.cgroups = cgroups or CgroupSupport(None, "not set up")
        self.layout = layout
        self.tier = tier
        self.on_status = on_status
        self.on_log = on_log
        self.proxy = proxy
        self.processes: dict[str, HostedProcess] = {}
        self.logs: dict[str, LogBuffer] = {}
        self._sweeper: asyncio.Task | None = None
        self._log_tasks: set[asyncio.Task] = set()
        self.closed = False

    def limits(self) -> isolation.Limits:
        """Default rlimits of a hosted server."""
        s = self.settings
        return isolation.Limits(s.memory_mb, s.cpu_s, s.nofile, s.nproc, s.fsize_mb)

    async def start(self) -> None:
        """Start the idle/health sweeper."""
        self._sweeper = asyncio.create_task(self._sweep())

    async def close(self) -> None:
        """Stop every process (no orphans: each sandbox's group is killed)."""
        self.closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await asyncio.gather(
            *(p.stop(graceful=False, reason="service stopping") for p in self.processes.values()),
            return_exceptions=True,
        )
        for task in list(self._log_tasks):
            with contextlib.suppress(Exception):
                await task

    def key_for(self, spec: ServerSpec, tenant: str | None) -> str:
        """One process per server, or per tenant for per-user servers."""
        return f"{spec.name}@{tenant}" if spec.per_user and tenant else spec.name

    def check_capacity(self, starting: HostedProcess) -> None:
        """Refuse a start over the per-server or total cap."""
        live = [
            p
            for p in self.processes.values()
            if p is not starting and p.state in (STARTING, RUNNING, STOPPING)
        ]
        if len(live) >= self.settings.max_total:
            raise Unavailable(
                "The sandbox runs its maximum number of processes.",
                details={"limit": self.settings.max_total},
            )
        same = [p for p in live if p.spec.name == starting.spec.name]
        if len(same) >= self.settings.max_per_server:
            raise Unavailable(
                f"Server {starting.spec.name!r} runs its maximum number of processes.",
                details={"limit": self.settings.max_per_server},
            )

    def process(self, spec: ServerSpec, tenant: str | None = None) -> HostedProcess:
        """The (possibly not yet started) process for a server and tenant."""
        key = self.key_for(spec, tenant)
        proc = self.processes.get(key)
        if proc is None:
            proc = HostedProcess(self, key, spec)
            self.processes[key] = proc
        elif proc.spec != spec and proc.state not in (RUNNING, STARTING):
            proc.spec = spec
        return proc

    async def ensure(self, spec: ServerSpec, tenant: str | None = None) -> HostedProcess:
        """The running process for the server, started now if needed."""
        if self.closed:
            raise Unavailable("The sandbox is shutting down.")
        proc = self.process(spec, tenant)
        if proc.state == FAILED:
            proc.restarts = 0
        await proc.ensure_running()
        return proc

    async def call(
        self,
        spec: ServerSpec,
        message: dict[str, Any],
        tenant: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any] | None:
        """Forward one JSON-RPC message; initialize and ping are answered here."""
        proc = await self.ensure(spec, tenant)
        method = message.get("method")
        if "id" not in message:
            if method != "notifications/initialized":
                await proc.notify(message)
            return None
        if method == "initialize":
            return {"jsonrpc": "2.0", "id": message["id"], "result": proc.init_result}
        if method == "ping":
            return {"jsonrpc": "2.0", "id": message["id"], "result": {}}
        wait = timeout or spec.timeout_s or self.settings.call_timeout_s
        return await proc.forward(message, wait)

    async def discover(self, spec: ServerSpec) -> dict[str, list[Any]]:
        """tools/list, resources/list and prompts/list (each paged to the end)."""
        out: dict[str, list[Any]] = {}
        for kind in ("tools", "resources", "prompts"):
            items: list[Any] = []
            cursor = None
            for _ in range(100):
                params = {"cursor": cursor} if cursor else {}
                reply = await self.call(
                    spec, {"jsonrpc": "2.0", "id": 1, "method": f"{kind}/list", "params": params}
                )
                result = (reply or {}).get("result")
                if result is None:
                    break
                items.extend(result.get(kind) or [])
                cursor = result.get("nextCursor")
                if not cursor:
                    break
            out[kind] = items
        return out

    async def stop(self, name: str, graceful: bool = True, timeout: float = 5.0) -> list[str]:
        """Stop every process of a server; returns the keys stopped."""
        keys = [k for k, p in self.processes.items() if p.spec.name == name]
        await asyncio.gather(
            *(self.processes[k].stop(graceful, timeout, "stopped by request") for k in keys)
        )
        return keys

    def status(self, name: str) -> list[dict[str, Any]]:
        """Status of each process of a server."""
        return [p.snapshot() for p in self.processes.values() if p.spec.name == name]

    def running(self, name: str) -> bool:
        """True when some process of the server is up."""
        return any(p.state == RUNNING for p in self.processes.values() if p.spec.name == name)

    def require_known(self, name: str) -> None:
        """409 when nothing is known about the server here."""
        if not any(p.spec.name == name for p in self.processes.values()):
            raise Conflict(f"Server {name!r} has no process on this replica.")

    async def report_status(self, snapshot: dict[str, Any]) -> None:
        """Hand a status change to the service (store + event); never fail the caller."""
        try:
            await self.on_status(snapshot)
        except Exception:
            log.exception("sandbox_status_not_reported", server=snapshot.get("server"))

    def log(self, server: str, stream: str, text: str) -> None:
        """Record a log line and publish it live."""
        line = self.log_buffer(server).append(server, stream, text)
        if self.on_log is not None:
            task = asyncio.create_task(self.on_log(line))
            self._log_tasks.add(task)
            task.add_done_callback(self._log_tasks.discard)

    def log_buffer(self, server: str) -> LogBuffer:
        """The log buffer of a server (created empty)."""
        buf = self.logs.get(server)
        if buf is None:
            s = self.settings
            buf = self.logs[server] = LogBuffer(s.log_lines, s.log_bytes, s.log_line_bytes)
        return buf

    async def proxy_for(self, key: str, server: str, path: Path) -> Path | None:
        """The egress proxy socket for this process, when the proxy runs."""
        if self.proxy is None or self.tier != isolation.BWRAP_USERNS:
            return None
        uid = isolation.host_uid(self.settings, key)
        return await self.proxy.open_socket(key, server, path, uid)

    async def release_proxy(self, key: str) -> None:
        """Close the process's proxy socket."""
        if self.proxy is not None:
            await self.proxy.close_socket(key)

    async def _sweep(self) -> None:
        """Stop idle processes; ping running ones and restart those that do not answer."""
        last_ping = time.monotonic()
        while True:
            await asyncio.sleep(min(1.0, self.settings.idle_timeout_s / 2))
            now = time.monotonic()
            ping = now - last_ping >= self.settings.health_interval_s
            if ping:
                last_ping = now
            for proc in list(self.processes.values()):
                try:
                    if proc.state != RUNNING:
                        continue
                    if not proc._pending and now - proc.last_used > self.settings.idle_timeout_s:
                        await proc.stop(graceful=True, timeout=2.0, reason="idle")
                    elif ping:
                        await self._ping(proc)
                except Exception:
                    log.exception("sandbox_sweep_failed", key=proc.key)

    async def _ping(self, proc: HostedProcess) -> None:
        """One health ping; a silent process is killed so the watcher restarts it."""
        used = proc.last_used
        try:
            await proc.forward({"jsonrpc": "2.0", "id": 0, "method": "ping"}, 5.0)
        except (UpstreamError, UpstreamTimeout):
            self.log(proc.spec.name, "system", "health ping failed; restarting")
            if proc.proc is not None:
                _signal_group(proc.proc.pid, signal.SIGKILL)
        finally:
            proc.last_used = used  # a ping is not use
            proc.calls -= 1
