"""The whole platform: the five services behind nginx, on given Postgres and NATS."""

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from libs.devstack import proc
from libs.devstack.nginx import Nginx
from libs.devstack.services import SERVICES, ServiceProcess, start_service, stop_all

# What a stack on this machine needs that a production deployment sets differently: local
# upstreams and webhook receivers on loopback pass the SSRF rules (the gateway follows the
# registry's allowlist), and cookies work over plain http. The caller's environment wins.
LOCAL_DEFAULTS = {
    "REGISTRY_SSRF_ALLOWLIST": "127.0.0.0/8",
    "AUDIT_SSRF_ALLOWLIST": "127.0.0.0/8",
    "SWITCHBOARD_COOKIE_SECURE": "false",
}


class StackError(RuntimeError):
    """The stack did not come up; the message points at the log files."""


@dataclass
class StackConfig:
    """What a stack needs: its backing servers, namespace, public port, extra env and checkout.

    The extra env is for all services and per service (each one's own database role and NATS
    user); the checkout (and its interpreter) is what the services run from."""

    database_url: str  # DATABASE_URL of every service (empty: each has its own URL)
    nats_url: str
    port: int
    namespace: str = ""
    name: str = ""
    log_dir: Path = field(default_factory=lambda: proc.run_dir() / "logs")
    env: dict[str, str] = field(default_factory=dict)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    root: Path = proc.ROOT
    python: str = sys.executable


class Stack:
    """Five services (any number of replicas each) behind one nginx."""

    def __init__(self, config: StackConfig) -> None:
        """Prepare a stack; nothing starts before start()."""
        self.config = config
        self.replicas: list[ServiceProcess] = []
        name = "-".join(filter(None, ["nginx", config.name]))
        self.nginx = Nginx(port=config.port, name=name, log_dir=config.log_dir, root=config.root)
        self._routed: list[ServiceProcess] = []
        self._next_index: dict[str, int] = {}

    @property
    def url(self) -> str:
        """Return the public base URL (nginx)."""
        return self.nginx.url

    @property
    def env(self) -> dict[str, str]:
        """Return the environment every service gets."""
        # no DATABASE_URL when every service has its own (the admin's URL reaches no service)
        database = {"DATABASE_URL": self.config.database_url} if self.config.database_url else {}
        return {
            **database,
            "NATS_URL": self.config.nats_url,
            "SWITCHBOARD_NAMESPACE": self.config.namespace,
            **LOCAL_DEFAULTS,
            "SWITCHBOARD_PUBLIC_URL": self.url,
            **{k: v for k in LOCAL_DEFAULTS if (v := os.environ.get(k))},
            **self.config.env,
        }

    @property
    def log_files(self) -> list[Path]:
        """Return the log files of every replica started so far, and nginx's."""
        return [r.log_path for r in self.replicas] + [self.nginx.log_path]

    def replicas_of(self, service: str) -> list[ServiceProcess]:
        """Return the replicas of service started by this stack (alive or not)."""
        return [r for r in self.replicas if r.service == service]

    def spawn(self, service: str, env: dict[str, str] | None = None) -> ServiceProcess:
        """Start one more replica of service that nginx does not route to."""
        index = self._next_index.get(service, 1)
        self._next_index[service] = index + 1
        replica = start_service(
            service,
            index,
            {**self.env, **self.config.service_env.get(service, {}), **(env or {})},
            self.config.log_dir,
            python=self.config.python,
            cwd=self.config.root,
        )
        self.replicas.append(replica)
        return replica

    def _route(self) -> None:
        """Point nginx's upstreams at the replicas started through start()/start_replica()."""
        self.nginx.upstreams = {
            s: [r.address for r in self.replicas if r.service == s and r in self._routed]
            for s in SERVICES
        }

    async def start(self, timeout: float = 60.0) -> None:
        """Start every service and nginx, then wait until /api/v1/health shows all five up."""
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        for service in SERVICES:
            for old in self.config.log_dir.glob(f"{service}*.log"):
                old.unlink()
        self._routed = [self.spawn(service) for service in SERVICES]
        self._route()
        self.nginx.start()
        # Heartbeats can precede the HTTP listener, so also wait for each replica's /healthz.
        deadline = time.monotonic() + timeout
        await asyncio.gather(*(self.wait_replica_healthy(r, timeout) for r in self._routed))
        await self.wait_healthy(max(deadline - time.monotonic(), 1.0))

    async def start_replica(self, service: str, timeout: float = 30.0) -> ServiceProcess:
        """Start one more routed replica of service and wait until its /healthz answers."""
        replica = self.spawn(service)
        self._routed.append(replica)
        await self.wait_replica_healthy(replica, timeout)
        self._route()
        await asyncio.to_thread(self.nginx.reload)
        return replica

    def kill(self, service: str) -> list[ServiceProcess]:
        """SIGKILL every live replica of service (a crash); return them."""
        killed = [r for r in self.replicas_of(service) if r.alive()]
        for replica in killed:
            replica.kill()
        return killed

    async def restart(self, service: str, timeout: float = 30.0) -> ServiceProcess:
        """Replace the dead routed replicas of service with one new routed replica."""
        self._routed = [r for r in self._routed if r.alive()]
        return await self.start_replica(service, timeout)

    async def health(self) -> dict[str, Any] | None:
        """Return GET /api/v1/health through nginx, or None when it does not answer 200."""
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
                async with http.get(f"{self.url}/api/v1/health") as resp:
                    if resp.status != 200:
                        return None
                    return await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def service_status(self, service: str) -> str | None:
        """Return service's status in /api/v1/health (`up`/`down`), None when unknown."""
        health = await self.health()
        for entry in (health or {}).get("services", []):
            if entry.get("service") == service:
                return str(entry.get("status"))
        return None

    def _check_alive(self) -> None:
        """Raise StackError naming the log of a routed replica that exited."""
        for replica in self._routed:
            if not replica.alive():
                raise StackError(
                    f"{replica.instance} exited with code {replica.process.returncode}; "
                    f"see {replica.log_path}:\n{proc.tail(replica.log_path)}"
                )

    async def wait_healthy(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until /api/v1/health lists every service as up; raise StackError on timeout."""
        deadline = time.monotonic() + timeout
        health: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            health = await self.health()
            statuses = {
                s.get("service"): s.get("status") for s in (health or {}).get("services", [])
            }
            if all(statuses.get(service) == "up" for service in SERVICES):
                return health or {}
            await asyncio.sleep(0.2)
        logs = "\n  ".join(str(p) for p in self.log_files)
        raise StackError(
            f"The stack was not healthy after {timeout:.0f}s (last /api/v1/health: {health}).\n"
            f"Logs:\n  {logs}"
        )

    async def wait_replica_healthy(self, replica: ServiceProcess, timeout: float = 30.0) -> None:
        """Wait until the replica's own /healthz answers 200; raise StackError otherwise."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() < deadline:
                if not replica.alive():
                    raise StackError(
                        f"{replica.instance} exited with code {replica.process.returncode}; "
                        f"see {replica.log_path}:\n{proc.tail(replica.log_path)}"
                    )
                try:
                    async with http.get(f"{replica.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        raise StackError(
            f"{replica.instance} not healthy after {timeout:.0f}s; see {replica.log_path}"
        )

    def stop(self) -> None:
        """Stop nginx and every replica this stack started."""
        self.nginx.stop()
        stop_all(self.replicas)
