"""Work on a hosted server done by the replica owning its process, forwarded there over NATS."""

from __future__ import annotations

import asyncio
from typing import Any

from libs.common import rpc
from libs.common.authn import Principal
from libs.common.bus import RpcError, RpcHandler
from libs.common.errors import Unavailable, ValidationError
from services.sandbox.runtime import Runtime, subject_token
from services.sandbox.server_spec import ServerSpec

CODE_SERVER = "code"
KEYED = ("call", "discover", "start", "restart")  # routed to the owner of the process key
SPREAD = ("stop", "status", "logs")  # asked of every replica owning one of the server's keys
MAX_HOPS = 2
SPREAD_TIMEOUT_S = 10.0


def server_name(data: dict[str, Any]) -> str:
    """The `server` field, checked."""
    name = data.get("server")
    if not isinstance(name, str) or not name:
        raise ValidationError("`server` (a server name) is required.", details={"field": "server"})
    return name


def tenant_of(data: dict[str, Any]) -> str | None:
    """The caller's identity for per-user servers."""
    doc = data.get("principal")
    if not isinstance(doc, dict):
        return None
    try:
        return Principal.from_dict(doc).user_id or doc.get("id")
    except (KeyError, TypeError):
        return None


def timeout_of(data: dict[str, Any]) -> float | None:
    """The caller's `timeout_s`, when positive."""
    value = data.get("timeout_s")
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


class Replicas:
    """Routes per-server work to the owning replica and answers what other replicas forward."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.instance = runtime.instance

    def subject(self, instance: str, verb: str) -> str:
        """The subject one replica answers `verb` on."""
        return f"{rpc.SANDBOX_REPLICA}.{subject_token(instance)}.{verb}"

    async def serve(self) -> None:
        """Answer the verbs other replicas forward to this one."""
        for verb in KEYED:
            await self.rt.bus.serve(self.subject(self.instance, verb), self._keyed_handler(verb))
        for verb in SPREAD:
            await self.rt.bus.serve(self.subject(self.instance, verb), self._local_handler(verb))

    def _keyed_handler(self, verb: str) -> RpcHandler:
        """Answer a keyed verb forwarded here."""

        async def handle(data: dict[str, Any]) -> Any:
            return await self.keyed(verb, data)

        return handle

    def _local_handler(self, verb: str) -> RpcHandler:
        """Answer a spread verb about this replica."""

        async def handle(data: dict[str, Any]) -> Any:
            return await self.local(verb, data)

        return handle

    # ---- keyed verbs: one owner per process key ------------------------------------------

    async def keyed(self, verb: str, data: dict[str, Any]) -> Any:
        """Run `verb` on the owner of the server's process key, claiming it when free."""
        name = server_name(data)
        spec = await self.rt.spec(name)
        key = self.rt.manager.key_for(spec, tenant_of(data))
        hops = int(data.get("hops") or 0)
        for _ in range(3):
            owner = await self.rt.ownership.claim(key, name)
            if owner == self.instance:
                return await self._run(verb, spec, data)
            if hops >= MAX_HOPS:
                break
            try:
                return await self.rt.bus.request(
                    self.subject(owner, verb),
                    {**data, "hops": hops + 1},
                    timeout=self._forward_timeout(verb, spec, data),
                )
            except RpcError:
                raise
            except Unavailable:
                await self.rt.ownership.expire(key, owner)  # its replica no longer answers
        raise Unavailable(
            f"The owner of server {name!r} could not be reached.", details={"server": name}
        )

    def _forward_timeout(self, verb: str, spec: ServerSpec, data: dict[str, Any]) -> float:
        """How long to wait for the owner: its own timeout plus a start."""
        s = self.rt.settings
        call = timeout_of(data) or spec.timeout_s or s.call_timeout_s
        per_verb = {"call": call, "discover": 3 * call, "start": 5.0, "restart": 10.0}
        return per_verb[verb] + s.start_timeout_s + 5.0

    async def _run(self, verb: str, spec: ServerSpec, data: dict[str, Any]) -> Any:
        """Do a keyed verb here, on the owner."""
        manager = self.rt.manager
        if verb == "call":
            reply = await manager.call(spec, data["message"], tenant_of(data), timeout_of(data))
            return {"message": reply}
        if verb == "discover":
            cached = self.rt.listings.get(spec.name)
            if cached is not None and cached[0] == spec and not manager.running(spec.name):
                return cached[1]  # a health check must not start an idle server again
            listing = await manager.discover(spec)
            self.rt.listings[spec.name] = (spec, listing)
            return listing
        if verb == "restart":
            await manager.stop(spec.name, graceful=True, timeout=5.0)
            self.rt.forget_spec(spec.name)
            spec = await self.rt.spec(spec.name)
        proc = await manager.ensure(spec)
        return {**proc.snapshot(), "instance": self.instance}

    # ---- spread verbs: every replica holding one of the server's keys ----------------------

    async def spread(self, verb: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Ask this replica and every live owner of the server's keys; one answer each."""
        name = server_name(data)
        owners = await self.rt.ownership.holders(name) | {self.instance}
        answers = await asyncio.gather(*(self._ask(inst, verb, data) for inst in sorted(owners)))
        return [a for a in answers if a is not None]

    async def _ask(self, instance: str, verb: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """One replica's answer (None when it is gone)."""
        if instance == self.instance:
            return await self.local(verb, data)
        timeout = SPREAD_TIMEOUT_S + float(data.get("timeout") or 0)
        try:
            return await self.rt.bus.request(self.subject(instance, verb), data, timeout=timeout)
        except RpcError:
            raise
        except Unavailable:
            return None

    async def local(self, verb: str, data: dict[str, Any]) -> dict[str, Any]:
        """A spread verb on this replica's own processes and logs."""
        name = server_name(data)
        manager = self.rt.manager
        if verb == "stop":
            graceful = bool(data.get("graceful", True))
            keys = await manager.stop(name, graceful, float(data.get("timeout") or 5.0))
            await self.rt.ownership.release(keys)
        if verb == "logs":
            lines = manager.log_buffer(name).query(
                data.get("level"), int(data.get("limit") or 100), data.get("since")
            )
            return {"instance": self.instance, "items": [self.rt.log_line(ln) for ln in lines]}
        processes = [{**p, "instance": self.instance} for p in manager.status(name)]
        return {"instance": self.instance, "processes": processes, "running": manager.running(name)}
