"""Following the registry: a server is refetched once per version, refetches coalesce."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import nats
import orjson

from libs.common import events as ev
from services.registry import servers
from tests.integration.gateway.conftest import calculator, register
from tests.support.upstreams import run_upstream


@asynccontextmanager
async def pulls(nats_url: str, namespace: str, name: str) -> AsyncIterator[list[float]]:
    """The snapshot requests that name server `name` (one entry each)."""
    seen: list[float] = []
    nc = await nats.connect(nats_url)

    async def on_msg(msg: Any) -> None:
        if name in (orjson.loads(msg.data).get("names") or ()):
            seen.append(asyncio.get_running_loop().time())

    await nc.subscribe(f"{namespace}.rpc.registry.snapshot", cb=on_msg)
    await nc.flush()  # the server knows the subscription before any request is sent
    try:
        yield seen
    finally:
        await nc.close()


def updated(name: str, version: int) -> ev.Event:
    """A registry.server.updated about `name` at `version`."""
    return ev.SERVER_UPDATED.event(ev.ServerChanged(name, "id", version, ["x"]), source="registry")


async def idle(core: Any, registry: Any = None) -> None:
    """Wait until the registry (when given) has relayed its events and the core refetches nothing.

    Then wait a moment for the snapshot requests to be seen."""
    async with asyncio.timeout(5):
        while registry is not None and await registry.pool.fetchval(
            "SELECT count(*) FROM registry.outbox"
        ):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        while core.sync.pulling:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)


async def test_an_event_whose_version_is_applied_already_is_not_refetched(
    registry, core_factory, nats_url: str, namespace: str
) -> None:
    async with run_upstream(calculator()) as url:
        await register(registry, "calc", url)
        core = await core_factory()
        await core.wait_for_tool("calc__add")
        await idle(core, registry)
        applied = core.sync.applied["calc"]
        async with pulls(nats_url, namespace, "calc") as seen:
            for version in (applied - 1, applied):
                await core.sync.on_event(updated("calc", version))
            assert not core.sync.pulling
            await core.sync.on_event(updated("calc", applied + 1))  # one the table lacks
            await idle(core)
    assert len(seen) == 1
    assert "calc__add" in core.table.by_public


async def test_a_burst_of_events_about_a_server_makes_at_most_two_refetches(
    registry, core_factory, nats_url: str, namespace: str
) -> None:
    async with run_upstream(calculator()) as url:
        server = await register(registry, "calc", url)
        core = await core_factory()
        await core.wait_for_tool("calc__add")
        await idle(core, registry)
        async with pulls(nats_url, namespace, "calc") as seen:
            top = core.sync.applied["calc"] + 1
            for version in range(top, top + 50):  # arriving while the first refetch runs
                await core.sync.on_event(updated("calc", version))
            await idle(core)
            assert 1 <= len(seen) <= 2
            # a change the registry makes meanwhile is picked up by the refetch after
            async with registry.pool.acquire() as conn, conn.transaction():
                row = await servers.get_or_404(conn, server["name"])
                changed = await servers.touch(registry, conn, row, ["x"], "test")
            async with asyncio.timeout(5):
                while core.sync.applied.get("calc") != changed["version"]:
                    await asyncio.sleep(0.01)


async def test_a_refetch_racing_a_deletion_leaves_the_server_out(registry, core_factory) -> None:
    async with run_upstream(calculator()) as url:
        server = await register(registry, "calc", url)
        core = await core_factory()
        await core.wait_for_tool("calc__add")
        version = core.sync.applied["calc"]  # read before: the deletion's event may come first
        async with registry.pool.acquire() as conn, conn.transaction():
            await servers.delete(registry, conn, server, "test")
        # a refetch started around the deletion's event: whichever lands last, it is gone
        await core.sync.on_event(updated("calc", version + 1))
        await core.wait_for_tool("calc__add", present=False)
        await idle(core)
    assert "calc" not in core.table.servers
    assert "calc" not in core.sync.applied
