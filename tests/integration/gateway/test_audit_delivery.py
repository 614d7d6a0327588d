"""A call's audit record survives a hung NATS: it is published again (same id) until stored.

A call the client saw succeed has exactly one record; one whose record cannot be stored within
GATEWAY_AUDIT_DEADLINE_S is answered -32014 and its result withheld.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from libs.common import bus as busmod
from libs.common.bus import Bus
from services.gateway.call_context import CallContext
from services.gateway.jsonrpc import AUDIT_UNAVAILABLE, RpcFault
from services.gateway.protocol import Gateway
from services.gateway.settings import GatewaySettings
from tests.integration.audit.private_nats import PrivateNats
from tests.integration.gateway.conftest import ADMIN, calculator, register
from tests.integration.registry.conftest import run_upstream
from tests.support import settings_for

SLOW = {"name": "hang__slow", "arguments": {"seconds": 0.3}}


@pytest.fixture
async def hangable(tmp_path: Path, pg_url: str) -> AsyncIterator[tuple[PrivateNats, Bus]]:
    """A NATS of the test's own (to pause) and a bus on it."""
    server = PrivateNats(tmp_path / "nats")
    await server.start()
    settings = settings_for(
        GatewaySettings, pg_url=pg_url, nats_url=server.url, namespace=f"t{secrets.token_hex(4)}"
    )
    try:
        async with busmod.connect(settings, name="audit-delivery-test") as bus:
            try:
                yield server, bus
            finally:
                server.resume()  # before the bus drains its connection
    finally:
        await server.kill()


async def records(bus: Bus) -> int:
    """How many messages the bus's events stream holds."""
    info = await bus.nc.jsm().stream_info(bus.stream)
    return info.state.messages


async def gateway_on(core_factory: Callable[..., Any], bus: Bus, **env: Any) -> Gateway:
    """A gateway core whose audit records go to `bus`."""
    core = await core_factory(**env)
    await core.wait_for_tool("hang__slow")
    return Gateway(core.settings, core.table, core.pool, bus)


async def test_a_record_that_meets_a_hung_nats_is_stored_once_and_the_call_answered(
    registry, core_factory, hangable
) -> None:
    server, bus = hangable
    async with run_upstream(calculator("hang")) as url:
        await register(registry, "hang", url)
        gateway = await gateway_on(core_factory, bus)
        before = await records(bus)
        server.pause()  # the record's first publishes get no acknowledgement
        call = asyncio.create_task(gateway.call_tool(SLOW, _context()))
        await asyncio.sleep(6)  # longer than one publish waits for its acknowledgement
        assert not call.done()  # held until the record is stored, not answered without it
        server.resume()
        async with asyncio.timeout(10):
            result = await call
    assert result["content"][0]["text"] == "done"
    assert await records(bus) == before + 1  # published two or three times, stored once


async def test_a_record_not_stored_by_the_deadline_withholds_the_result(
    registry, core_factory, hangable
) -> None:
    server, bus = hangable
    async with run_upstream(calculator("hang")) as url:
        await register(registry, "hang", url)
        gateway = await gateway_on(core_factory, bus, GATEWAY_AUDIT_DEADLINE_S="1")
        server.pause()
        with pytest.raises(RpcFault) as failed:
            async with asyncio.timeout(10):
                await gateway.call_tool(SLOW, _context())
    assert failed.value.code == AUDIT_UNAVAILABLE


def _context() -> CallContext:
    """The call context of the platform admin on /mcp."""
    return CallContext(ADMIN)
