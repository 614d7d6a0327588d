"""Who created which 2025-11-25 task: the ownership records behind `tasks/list`.

Every principal reaches an upstream over the gateway's one connection (and credential) per
server, so the upstream binds all their tasks to that one authorization context and its own
`tasks/list` holds everybody's. `tasks/get`, `tasks/result` and `tasks/cancel` need no record (the
wrapped id carries its owner), but listing does: each task a 2025-11-25 client creates is
recorded in the NATS KV bucket `gateway_tasks` under `{principal fingerprint}.{digest}` (digest of
route and upstream id) with the route, the server's registry id, the upstream id and the
creation time. Any replica reads
a caller's records with one filtered watch. Records expire with the bucket's TTL
(`GATEWAY_TASK_TTL_S`); one whose task the upstream no longer knows is dropped when listed.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from libs.common.bus import Bus

log = structlog.get_logger()

KV_BUCKET = "gateway_tasks"
READ_S = 5.0


@dataclass(frozen=True)
class Record:
    """One task a principal created: where it lives and its upstream id."""

    key: str
    route: str  # the route tag of the wrapped id: a server name, or `{server}.{source digest}`
    server_id: str  # the registry id: a server registered again under the name is another one
    task_id: str
    created: float


class TaskRecords:
    """The `gateway_tasks` bucket, opened on first use."""

    def __init__(self, bus: Bus | None, ttl_s: float) -> None:
        self.bus = bus
        self.ttl_s = ttl_s
        self._kv: Any = None
        self._lock = asyncio.Lock()

    async def _bucket(self) -> Any:
        """Open (or create) the bucket; entries expire `ttl_s` after they were written."""
        async with self._lock:
            if self._kv is None and self.bus is not None:
                self._kv = await self.bus.key_value(KV_BUCKET, ttl_s=self.ttl_s)
            return self._kv

    @staticmethod
    def key(owner: str, route: str, task_id: str) -> str:
        """The record's key: the owner's fingerprint, then a digest (KV keys are restricted)."""
        digest = hashlib.sha256(f"{route}\0{task_id}".encode()).hexdigest()[:32]
        return f"{owner}.{digest}"

    async def add(self, owner: str, route: str, server_id: str, task_id: str) -> None:
        """Record a task; a failure is logged (the task exists, only listing will miss it)."""
        try:
            kv = await self._bucket()
            if kv is None:
                return
            value = orjson.dumps({"r": route, "s": server_id, "t": task_id, "c": time.time()})
            await kv.put(self.key(owner, route, task_id), value)
        except Exception as exc:
            log.warning("task_record_not_written", route=route, error=repr(exc))

    async def owned(self, owner: str) -> list[Record]:
        """Every live record of one owner."""
        kv = await self._bucket()
        if kv is None:
            return []
        watcher = await kv.watch(f"{owner}.>", ignore_deletes=True)
        records: list[Record] = []
        try:
            while (entry := await watcher.updates(timeout=READ_S)) is not None:
                try:
                    doc = orjson.loads(entry.value)
                    rec = Record(entry.key, doc["r"], doc["s"], doc["t"], float(doc["c"]))
                    records.append(rec)
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
        finally:
            await watcher.stop()
        return records

    async def drop(self, key: str) -> None:
        """Forget one record (its task is gone upstream)."""
        try:
            kv = await self._bucket()
            if kv is not None:
                await kv.delete(key)
        except Exception as exc:
            log.info("task_record_not_dropped", error=repr(exc))
