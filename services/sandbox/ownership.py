"""Ownership leases: exactly one live replica owns each hosted process key (Postgres rows)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from libs.common import outbox
from libs.common.events import PROCESS_STATUS, ProcessStatus
from services.sandbox.store import SCHEMA
from services.sandbox.store import owners as owners_store
from services.sandbox.store import processes as processes_store

log = structlog.get_logger()

LostHook = Callable[[list[str]], Awaitable[None]]
IdleCheck = Callable[[str], bool]


class Ownership:
    """This replica's leases: claim on use, refresh while alive, release on shutdown."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        instance: str,
        ttl_s: float,
        tier: str,
        *,
        on_lost: LostHook,
        releasable: IdleCheck,
    ) -> None:
        self.pool = pool
        self.instance = instance
        self.ttl_s = ttl_s
        self.tier = tier
        self.on_lost = on_lost
        self.releasable = releasable
        # key → local monotonic time until which the lease is surely still ours
        self.owned: dict[str, float] = {}
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Start refreshing leases and reaping the rows of dead replicas."""
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        """Release every lease and this replica's process rows (callers stop processes first)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.owned.clear()
        async with self.pool.acquire() as conn, conn.transaction():
            await owners_store.delete_owners_of(conn, self.instance)
            await processes_store.delete_processes_of(conn, self.instance)

    def holds(self, key: str) -> bool:
        """True when this replica surely still holds the key's lease (no database round trip)."""
        return self.owned.get(key, 0.0) > time.monotonic()

    async def claim(self, key: str, server: str) -> str:
        """The instance owning `key`: ours when it was free, expired or ours already."""
        if self.holds(key):
            return self.instance
        for _ in range(3):
            async with self.pool.acquire() as conn, conn.transaction():
                row = await owners_store.get_owner_for_update(conn, key)
                if row is None:
                    if not await owners_store.insert_owner(
                        conn, key, server, self.instance, self.ttl_s
                    ):
                        continue  # another replica inserted it at the same moment
                elif row["live"] and row["instance"] != self.instance:
                    return row["instance"]
                else:
                    await owners_store.update_owner(conn, key, self.instance, self.ttl_s)
                    if row["instance"] != self.instance:
                        log.info("sandbox_ownership_taken", key=key, previous=row["instance"])
                        await self._reap(conn)
            self.owned[key] = time.monotonic() + self.ttl_s / 2
            return self.instance
        raise RuntimeError(f"could not settle the owner of {key!r}")

    async def expire(self, key: str, instance: str) -> None:
        """End another replica's lease now: it holds the key but no longer answers."""
        async with self.pool.acquire() as conn:
            await owners_store.expire_owner(conn, key, instance)

    async def release(self, keys: list[str]) -> None:
        """Give up leases whose processes stopped: the next call anywhere may claim them."""
        for key in keys:
            self.owned.pop(key, None)
        if keys:
            async with self.pool.acquire() as conn:
                await owners_store.delete_owners(conn, self.instance, keys)

    async def holders(self, server: str) -> set[str]:
        """Replicas that own one of a server's keys or last stored one of its processes."""
        async with self.pool.acquire() as conn:
            rows = await owners_store.list_live_owners(conn, server)
            stored = await owners_store.list_process_instances(conn, server)
        return {r["instance"] for r in rows} | set(stored)

    async def refresh(self) -> list[str]:
        """Extend our leases; the keys lost (expired and maybe taken) are returned and dropped."""
        keys = list(self.owned)
        if not keys:
            return []
        started = time.monotonic()
        async with self.pool.acquire() as conn:
            kept = set(await owners_store.refresh_owners(conn, self.instance, keys, self.ttl_s))
        lost = [k for k in keys if k not in kept]
        for key in kept:
            self.owned[key] = started + self.ttl_s / 2
        for key in lost:
            self.owned.pop(key, None)
        return lost

    async def reap(self) -> list[dict]:
        """Mark our ended processes' rows as still served, then delete those of dead replicas.

        Our ended processes' logs live on here; the rows of replicas that died go through
        `processes_store.delete_orphan_processes`."""
        async with self.pool.acquire() as conn, conn.transaction():
            await processes_store.touch_ended_processes(conn, self.instance)
            return await self._reap(conn)

    async def _reap(self, conn: asyncpg.Connection) -> list[dict]:
        """Reap in the caller's transaction; each row gone is a `stopped` status event."""
        rows = await processes_store.delete_orphan_processes(conn, self.ttl_s)
        for row in rows:
            if row["state"] == "stopped":
                continue
            payload = ProcessStatus(
                server=row["server"],
                key=row["key"],
                state="stopped",
                previous=row["state"],
                reason="owner replica gone",
                pid=None,
                restarts=row["restarts"],
                exit_code=row["exit_code"],
                isolation=self.tier,
                instance=row["instance"],
            )
            await outbox.enqueue(conn, SCHEMA, PROCESS_STATUS.event(payload, source=SCHEMA))
        return [dict(r) for r in rows]

    async def _loop(self) -> None:
        """Every third of the TTL: release idle keys, refresh, handle losses, reap dead rows."""
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self.release([k for k in list(self.owned) if self.releasable(k)])
                lost = await self.refresh()
                if lost:
                    log.warning("sandbox_ownership_lost", keys=lost)
                    await self.on_lost(lost)
                await self.reap()
            except Exception:
                log.exception("sandbox_ownership_refresh_failed")
