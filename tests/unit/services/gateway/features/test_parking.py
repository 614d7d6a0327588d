"""Parked calls of session upstreams: signed state, expiry, calls on a shared SSE stream."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

import pytest

from services.gateway.features.parking import INPUT_KEY, Parking, holds
from services.gateway.jsonrpc import RpcFault
from services.gateway.upstreams.transport import InputNeeded


class FakeUpstream:
    def __init__(self) -> None:
        self.abandoned: list[int] = []

    async def abandon(self, resp: Any, rid: int) -> None:
        self.abandoned.append(rid)


class FakeServer:
    name = "old"


async def _parked(parking: Parking, upstream: FakeUpstream) -> dict[str, Any]:
    request = {"jsonrpc": "2.0", "id": 7, "method": "elicitation/create", "params": {"m": 1}}
    need = InputNeeded(request, partial(parking.park, FakeServer(), "user:u1"))
    need.upstream, need.resp, need.rid = upstream, object(), 3  # type: ignore[assignment]
    return await need.park(need)


async def test_a_parked_call_embeds_the_request_and_a_signed_state() -> None:
    parking = Parking(None, b"secret", 30)
    result = await _parked(parking, FakeUpstream())
    assert result["resultType"] == "input_required"
    assert result["inputRequests"] == {
        INPUT_KEY: {"method": "elicitation/create", "params": {"m": 1}}
    }
    assert holds(result) and not holds({"requestState": "an upstream's own"})
    other = {**result, "requestState": result["requestState"][:-1] + "x"}
    with pytest.raises(RpcFault) as forged:
        await parking.resume(other, "user:u1")
    with pytest.raises(RpcFault) as stranger:
        await parking.resume(result, "user:u2")
    assert forged.value.code == stranger.value.code == -32602
    await parking.stop()


async def test_a_call_whose_retry_never_comes_is_dropped() -> None:
    parking = Parking(None, b"secret", 0.05)
    upstream = FakeUpstream()
    result = await _parked(parking, upstream)
    await asyncio.sleep(0.2)
    assert upstream.abandoned == [3]
    assert parking.calls == {}
    with pytest.raises(RpcFault) as late:
        await parking.resume(result, "user:u1")
    assert late.value.code == -32602


async def test_a_call_on_a_shared_stream_parks_without_a_response_of_its_own() -> None:
    parking = Parking(None, b"secret", 30)
    upstream = FakeUpstream()
    request = {"jsonrpc": "2.0", "id": 4, "method": "roots/list"}
    need = InputNeeded(request, partial(parking.park, FakeServer(), "user:u1"))
    need.upstream, need.rid = upstream, 9  # type: ignore[assignment]  # an SSE upstream's call
    result = await need.park(need)
    await parking.stop()
    assert result["inputRequests"] == {INPUT_KEY: {"method": "roots/list"}}
    assert upstream.abandoned == [9]
