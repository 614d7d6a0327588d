"""Upstreams on the deprecated HTTP+SSE transport (`transport: sse`), an official SDK server."""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.jsonrpc import UPSTREAM_ERROR, UPSTREAM_TIMEOUT, RpcFault
from services.gateway.sse_upstream import SseUpstream
from tests.integration.gateway.conftest import ADMIN, register
from tests.integration.gateway.upstreams import Hangs, rich
from tests.integration.registry.conftest import run_upstream
from tests.support import free_port


async def test_tools_of_an_sse_upstream_are_listed_and_called_over_one_session(
    registry, core_factory
) -> None:
    async with run_upstream(rich("old"), transport="sse") as url:
        await register(registry, "old", url, transport="sse")
        core = await core_factory()
        listed = await core.call(ADMIN, "tools/list", {})
        results = await asyncio.gather(
            *(
                core.call(ADMIN, "tools/call", {"name": "old__add", "arguments": {"a": i, "b": 1}})
                for i in range(5)
            )
        )
        upstream = core.pool.upstream(core.table.servers["old"])
        post_url = upstream.post_url
        again = await core.call(ADMIN, "tools/call", {"name": "old__add", "arguments": {"a": 1}})
    assert {"old__add", "old__progress", "old__hang"} <= {t["name"] for t in listed["tools"]}
    assert [r["structuredContent"] for r in results] == [{"result": i + 1} for i in range(5)]
    assert isinstance(upstream, SseUpstream) and upstream.post_url == post_url  # one session
    assert again["isError"] is True  # the upstream's own validation error, relayed


async def test_progress_from_an_sse_upstream_is_relayed_with_the_clients_token(
    registry, core_factory
) -> None:
    seen: list[dict] = []

    async def notify(msg: dict) -> None:
        seen.append(msg)

    async with run_upstream(rich("old"), transport="sse") as url:
        await register(registry, "old", url, transport="sse")
        core = await core_factory()
        result = await core.call(
            ADMIN,
            "tools/call",
            {"name": "old__progress", "arguments": {"steps": 3}, "_meta": {"progressToken": 7}},
            notify=notify,
        )
    assert result["content"][0]["text"] == "3 steps"
    assert [m["params"]["progress"] for m in seen] == [1, 2, 3]
    assert {m["params"]["progressToken"] for m in seen} == {7}


async def test_a_timed_out_call_cancels_the_upstream_request(registry, core_factory) -> None:
    hangs = Hangs()
    async with run_upstream(rich("old", hangs), transport="sse") as url:
        await register(registry, "old", url, transport="sse", timeout_s=0.5)
        core = await core_factory()
        with pytest.raises(RpcFault) as exc:
            await core.call(ADMIN, "tools/call", {"name": "old__hang", "arguments": {"tag": "t1"}})
        await hangs.wait(hangs.cancelled, "t1")
        after = await core.call(
            ADMIN, "tools/call", {"name": "old__add", "arguments": {"a": 1, "b": 2}}
        )
    assert exc.value.code == UPSTREAM_TIMEOUT
    assert after["structuredContent"] == {"result": 3}


async def test_a_restarted_sse_upstream_fails_pending_calls_then_reconnects(
    registry, core_factory
) -> None:
    port = free_port()
    hangs = Hangs()
    async with run_upstream(rich("old", hangs), transport="sse", port=port) as url:
        await register(registry, "old", url, transport="sse")
        core = await core_factory()
        pending = asyncio.ensure_future(
            core.call(ADMIN, "tools/call", {"name": "old__hang", "arguments": {"tag": "t2"}})
        )
        await hangs.wait(hangs.started, "t2")
    with pytest.raises(RpcFault) as exc:
        await pending
    async with run_upstream(rich("old"), transport="sse", port=port):
        result = await core.call(
            ADMIN, "tools/call", {"name": "old__add", "arguments": {"a": 2, "b": 2}}
        )
    assert exc.value.code == UPSTREAM_ERROR
    assert result["structuredContent"] == {"result": 4}
