"""The gateway's upstream connections: through the outbound guard, answers capped while read."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.gateway.jsonrpc import RESULT_TOO_LARGE, UPSTREAM_ERROR, RpcFault
from services.registry import config
from services.registry.context import Registry
from tests.integration.gateway.conftest import ADMIN, calculator, register
from tests.integration.gateway.hostile_upstreams import Hostile, huge_event, huge_json
from tests.support import free_port, serving
from tests.support.listeners import Rebinder
from tests.support.upstreams import run_upstream

ADD = {"name": "calc__add", "arguments": {"a": 1, "b": 2}}


async def test_a_name_rebound_to_a_refused_address_is_never_connected(
    registry: Registry, core_factory: Any
) -> None:
    hits: list[int] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(1)
        writer.close()

    port = free_port()
    async with run_upstream(calculator(), port=port) as url:
        # the upstream registered by name; the name resolves to it, then rebinds to ::1, where
        # something else listens on the same port
        await register(registry, "calc", url.replace("127.0.0.1", "localhost"))
        dns = Rebinder({"localhost": [["127.0.0.1"]]})
        core = await core_factory(resolve=dns, GATEWAY_DNS_TTL_S="0")
        first = await core.call(ADMIN, "tools/call", ADD)
        inside = await asyncio.start_server(count, "::1", port)
        try:
            dns.answers["localhost"] = [["::1"]]
            await core.pool.posts.close()  # the next call needs a new connection
            core.pool.upstream(core.table.servers["calc"]).connected = False
            with pytest.raises(RpcFault) as exc:
                await core.call(ADMIN, "tools/call", ADD)
        finally:
            inside.close()
            await inside.wait_closed()
    assert first["structuredContent"] == {"result": 3}
    assert exc.value.code == UPSTREAM_ERROR and "SSRF" in exc.value.message
    assert hits == []
    assert dns.lookups.count("localhost") >= 2


async def set_allowlist(registry: Registry, value: list[str]) -> None:
    """Change the registry's `ssrf_allowlist` setting (its event reaches every gateway)."""
    async with registry.pool.acquire() as conn, conn.transaction():
        await config.put(registry, conn, "ssrf_allowlist", value, "test")


async def test_the_registry_s_allowlist_is_the_gateway_s_too(
    registry: Registry, core_factory: Any
) -> None:
    async with run_upstream(calculator()) as url:
        await register(registry, "calc", url)
        core = await core_factory()
        assert (await core.call(ADMIN, "tools/call", ADD))["structuredContent"] == {"result": 3}
        await core.pool.posts.close()
        core.pool.upstream(core.table.servers["calc"]).connected = False
        await set_allowlist(registry, [])
        try:
            async with asyncio.timeout(5):
                while core.pool.guard.allow:
                    await asyncio.sleep(0.02)
            with pytest.raises(RpcFault) as exc:
                await core.call(ADMIN, "tools/call", ADD)
        finally:
            await set_allowlist(registry, ["127.0.0.0/8"])
    assert exc.value.code == UPSTREAM_ERROR and "SSRF" in exc.value.message


@pytest.mark.parametrize("answer", [huge_json, huge_event], ids=["json", "sse-event"])
async def test_a_2_gb_answer_is_cut_off_while_it_is_read_and_the_call_gets_32013(
    registry: Registry, core_factory: Any, answer: Any
) -> None:
    hostile = Hostile({"huge": answer})
    async with serving(hostile) as base:
        await register(registry, "hostile", f"{base}/mcp")
        core = await core_factory(GATEWAY_MAX_RESULT_BYTES=str(1024 * 1024))
        with pytest.raises(RpcFault) as exc:
            await core.call(ADMIN, "tools/call", {"name": "hostile__huge", "arguments": {}})
        async with asyncio.timeout(10):
            while not hostile.disconnected:
                await asyncio.sleep(0.05)
    assert exc.value.code == RESULT_TOO_LARGE
    assert exc.value.data["limit"] == 1024 * 1024 + 64 * 1024
    assert hostile.sent < 64 * 1024 * 1024  # cut off long before 2 GB
