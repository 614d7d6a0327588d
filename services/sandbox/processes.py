"""Hosted stdio MCP servers: one shared sandboxed process per server.

Processes are started lazily, capped, stopped when idle and pinged while running (each process
itself: supervision.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from libs.common.errors import Conflict, Unavailable, UpstreamError, UpstreamTimeout
from services.sandbox import isolation, metrics
from services.sandbox.cgroups import CgroupSupport
from services.sandbox.layout import Layout
from services.sandbox.logs import LogBuffer, LogHook, ServerLogs
from services.sandbox.server_spec import ServerSpec
from services.sandbox.settings import SandboxSettings
from services.sandbox.supervision import (
    FAILED,
    RUNNING,
    STARTING,
    STOPPING,
    HostedProcess,
)

log = structlog.get_logger()

StatusHook = Callable[[dict[str, Any]], Awaitable[None]]


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
        self.proxy = proxy
        self.processes: dict[str, HostedProcess] = {}
        s = settings
        self.logs = ServerLogs(s.log_lines, s.log_bytes, s.log_line_bytes, on_log)
        self._sweeper: asyncio.Task | None = None
        self.closed = False
        metrics.track(self)

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
        await self.logs.drain()

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
        self.logs.log(server, stream, text)

    def log_buffer(self, server: str) -> LogBuffer:
        """The log buffer of a server (created empty)."""
        return self.logs.buffer(server)

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
                    if not proc.busy and now - proc.last_used > self.settings.idle_timeout_s:
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
            metrics.limit_kill("unresponsive")
            proc.kill_group()
        finally:
            proc.last_used = used  # a ping is not use
            proc.calls -= 1
