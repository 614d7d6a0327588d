"""The sandbox runtime: process manager, egress proxy and spec source wired to Postgres and NATS.

A little over 300 lines: the wiring of the service's parts; each part's logic lives in its own
module (processes, egress_gate, replicas, ownership)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
import structlog

from libs.common import outbox, process_env, rpc_types, ssrf, subjects, tenancy
from libs.common.authn import ServerRef
from libs.common.bus import Bus, RpcError
from libs.common.errors import NotFound, Unprocessable
from libs.common.events import (
    PROCESS_STATUS,
    ProcessStatus,
)
from libs.common.rpc_types import HostedRequest
from services.sandbox import (
    addresses,
    cgroups,
    enforcement,
    isolation,
    seccomp,
    selftest,
)
from services.sandbox.egress import EgressProxy
from services.sandbox.egress_gate import EgressGate, platform_hosts
from services.sandbox.layout import ensure_dir, plan
from services.sandbox.ownership import Ownership
from services.sandbox.policy import Policy, PolicyCache
from services.sandbox.processes import ProcessManager
from services.sandbox.server_spec import ServerSpec
from services.sandbox.settings import SandboxSettings
from services.sandbox.store import SCHEMA
from services.sandbox.store import processes as processes_store
from services.sandbox.supervision import FAILED, STOPPED
from services.sandbox.workspace import Workspace

log = structlog.get_logger()


class Runtime:
    """Everything the routes and RPC handlers of the sandbox share."""

    def __init__(
        self, settings: SandboxSettings, pool: asyncpg.Pool, bus: Bus, instance: str
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.bus = bus
        self.instance = instance
        self.tier, self.tier_reason = isolation.probe_tier(settings)
        no_seccomp = seccomp.unavailable_reason()
        if no_seccomp is not None:
            log.warning("sandbox_seccomp_unavailable", reason=no_seccomp, tier=self.tier)
        self.cgroups = cgroups.detect(settings.cgroups)
        if self.cgroups.reason:
            log.info("sandbox_cgroups_unavailable", reason=self.cgroups.reason)
        self.layout = plan(settings, instance)
        for note in self.layout.notes:
            log.warning("sandbox_path_relocated", detail=note)
        # under gVisor the pod's user-space kernel is the boundary to the host; bwrap is optional
        self.gvisor, self.gvisor_reason = isolation.detect_gvisor(
            settings.gvisor, isolation.read_proc_version()
        )
        self.enforcement = enforcement.measure(
            self.tier,
            gvisor=self.gvisor,
            root=isolation.host_uid(settings, "probe") is not None,
            seccomp=seccomp.supported(),
            landlock_abi=isolation.landlock_abi(settings.landlock_abi_max),
            cgroups=self.cgroups.memory,
        )
        self.guard = addresses.AddressGuard(
            allow=ssrf.parse_networks(settings.egress_allow_cidrs),
            platform_hosts=platform_hosts(settings),
        )
        self.policy_cache = PolicyCache()
        self.egress = EgressGate(pool, self.guard, self.policy_cache)
        self.proxy = EgressProxy(self.egress.host_allowed, self.egress.refused, self.guard)
        self.manager = ProcessManager(
            settings,
            self.layout,
            self.tier,
            on_status=self.process_status,
            on_log=self.publish_log,
            proxy=self.proxy,
            cgroups=self.cgroups,
        )
        self.ownership = Ownership(
            pool,
            instance,
            settings.owner_ttl_s,
            self.tier,
            on_lost=self.ownership_lost,
            releasable=self.releasable,
        )
        self.replicas: Any = None  # services.sandbox.replicas.Replicas, set by the app
        self.self_test: selftest.SelfTest | None = None  # set by start()
        self.workspace = Workspace(
            self.layout.work_root / "workspace",
            settings.max_file_bytes,
            settings.max_extract_bytes,
        )
        self._specs: dict[str, tuple[float, ServerSpec]] = {}
        self._views: dict[str, tuple[float, dict[str, Any]]] = {}
        # the last listing of each server, answered while its process is stopped and unchanged
        self.listings: dict[str, tuple[ServerSpec, dict[str, Any]]] = {}

    async def start(self) -> None:
        """Prepare the work root and start supervising."""
        root = self.layout.work_root
        for sub in (root, root / "servers", root / "runs"):
            ensure_dir(sub)
        await self.guard.refresh()
        self.self_test = await selftest.run(self.settings, self.layout, self.tier)
        if self.self_test.ok:
            log.info("sandbox_self_test_passed", duration_ms=self.self_test.duration_ms)
        else:
            log.error("sandbox_self_test_failed", cause=self.self_test.cause)
        self.workspace.ensure()
        await self.manager.start()
        await self.ownership.start()

    async def close(self) -> None:
        """Stop every process, release this replica's leases, stop the proxy."""
        await self.manager.close()
        try:
            await self.ownership.close()
        except Exception:
            log.exception("sandbox_leases_not_released")
        await self.proxy.close()
        self.layout.remove_stage()

    @property
    def isolation_tier(self) -> str:
        """The tier reported: `gvisor` under gVisor, else the mechanism each process gets."""
        return isolation.GVISOR if self.gvisor else self.tier

    async def policy(self) -> Policy:
        """The current security policy."""
        async with self.pool.acquire() as conn:
            return await self.policy_cache.get(conn)

    async def request_org(self, approval: Any) -> str | None:
        """The org an approval belongs to: its server's org in the registry (None: platform-wide).

        Network requests name a hosted server; code tools (the built-in `code` server) and the
        module allowlist belong to the platform, so only platform admins decide those.
        """
        server = approval["server"]
        if approval["kind"] != "network" or not server:
            return None
        try:
            return (await self.spec(server)).org
        except (NotFound, Unprocessable):
            return None

    def untrusted_allowed(self, policy: Policy) -> bool:
        """Whether untrusted code may run.

        Always on a tier that is not weak; on a weak one only when an admin accepted it (no
        isolation at all needs `allow_unisolated`)."""
        unisolated = self.settings.allow_unisolated or policy.allow_unisolated
        if self.tier == isolation.NONE and not self.gvisor:
            return unisolated
        if self.enforcement.weak:
            accepted = self.settings.accept_weak_isolation or policy.accept_weak_isolation
            return accepted or unisolated
        return True

    async def require_isolation(self) -> None:
        """Refuse untrusted code (422) where the isolation is missing or weak, unless accepted."""
        if not self.untrusted_allowed(await self.policy()):
            raise Unprocessable(
                "The sandbox's isolation here is missing or weak; untrusted code is refused.",
                details={
                    "isolation": self.isolation_tier,
                    "mechanism": self.tier,
                    "missing": self.enforcement.missing(),
                    "reason": self.tier_reason or self.gvisor_reason or None,
                },
            )

    # ---- specs -----------------------------------------------------------------------

    async def view(self, name: str) -> dict[str, Any]:
        """A server's registry view (cached briefly, dropped on events); 404 when none."""
        hit = self._views.get(name)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        try:
            hosted = await self.bus.call(rpc_types.REGISTRY_HOSTED, HostedRequest(name), timeout=5)
        except RpcError as exc:
            if exc.status == 404:
                raise NotFound(
                    f"Server {name!r} is not registered.", details={"server": name}
                ) from None
            raise
        view = dataclasses.asdict(hosted.server)  # the spec and the access checks read a dict
        if view.get("name") != name:
            raise NotFound(f"Server {name!r} is not registered.", details={"server": name})
        self._views[name] = (time.monotonic() + self.settings.spec_ttl_s, view)
        return view

    async def server_ref(self, name: str) -> ServerRef:
        """Whom a server belongs to (its org and shares), for the access checks; 404 when none."""
        return tenancy.server_ref(await self.view(name))

    async def spec(self, name: str) -> ServerSpec:
        """The stdio spec of a server, from the registry (cached briefly, dropped on events)."""
        hit = self._specs.get(name)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        view = await self.view(name)
        if view.get("transport") != "stdio" or not view.get("command"):
            raise Unprocessable(
                f"Server {name!r} is not a stdio server the sandbox hosts.",
                details={"server": name, "transport": view.get("transport")},
            )
        refused = process_env.refused_names(view.get("env") or {})
        if refused:
            raise Unprocessable(
                f"Server {name!r} sets environment variables the sandbox refuses.",
                details={"server": name, "fields": {f"env.{n}": "may not be set" for n in refused}},
            )
        spec = ServerSpec.from_view(view)
        self._specs[name] = (time.monotonic() + self.settings.spec_ttl_s, spec)
        return spec

    def forget_spec(self, name: str) -> None:
        """Drop a cached spec (the registry changed the server)."""
        self._specs.pop(name, None)
        self._views.pop(name, None)
        self.listings.pop(name, None)

    # ---- hooks -------------------------------------------------------------------------

    async def process_status(self, snap: dict[str, Any]) -> None:
        """Store a process's state and publish sandbox.process.status in one transaction."""
        payload = ProcessStatus(
            server=snap["server"],
            key=snap["key"],
            state=snap["state"],
            previous=snap.get("previous"),
            reason=snap.get("reason"),
            pid=snap.get("pid"),
            restarts=snap.get("restarts") or 0,
            exit_code=snap.get("exit_code"),
            backoff_s=snap.get("backoff_s"),
            isolation=self.isolation_tier,
            instance=self.instance,
        )
        async with self.pool.acquire() as conn, conn.transaction():
            await processes_store.upsert_process(conn, snap, self.instance)
            await outbox.enqueue(conn, SCHEMA, PROCESS_STATUS.event(payload, source=SCHEMA))

    def releasable(self, key: str) -> bool:
        """True when this replica runs nothing under the key (its lease may go)."""
        proc = self.manager.processes.get(key)
        return proc is None or proc.state in (STOPPED, FAILED)

    async def ownership_lost(self, keys: list[str]) -> None:
        """Our lease ran out: keep a running process if the key is free, else stop our copy."""
        for key in keys:
            proc = self.manager.processes.get(key)
            if proc is None or self.releasable(key):
                continue
            if await self.ownership.claim(key, proc.spec.name) != self.instance:
                await proc.stop(graceful=False, reason="ownership lost")

    def log_line(self, line: dict[str, Any]) -> dict[str, Any]:
        """A log line as other replicas and clients see it: with the replica that holds it."""
        return {**line, "instance": self.instance}

    def log_subject(self, server: str) -> str:
        """The core NATS subject a server's log lines are published on, live.

        Not namespaced: the Bus adds the namespace."""
        return subjects.sandbox_logs(subject_token(server))

    async def publish_log(self, line: dict[str, Any]) -> None:
        """Publish a log line live on core NATS (not stored in the stream)."""
        try:
            await self.bus.send(self.log_subject(line["server"]), orjson.dumps(self.log_line(line)))
        except Exception as exc:
            log.warning("sandbox_log_not_published", error=str(exc))


def subject_token(name: str) -> str:
    """A server name as one NATS subject token."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "_"


@asynccontextmanager
async def running(
    settings: SandboxSettings, pool: asyncpg.Pool, bus: Bus, instance: str
) -> AsyncIterator[Runtime]:
    """Start the runtime for the app's lifetime; every process is stopped on exit."""
    runtime = Runtime(settings, pool, bus, instance)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.close()
