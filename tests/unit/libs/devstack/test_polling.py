"""until(): the one bounded wait the tests poll with."""

from __future__ import annotations

import asyncio

import pytest

from libs.devstack.harness import until


async def test_until_returns_the_first_truthy_value_of_an_async_check() -> None:
    calls = []

    async def check() -> list[int]:
        calls.append(1)
        return [len(calls)] if len(calls) >= 3 else []

    assert await until(check, timeout=5, interval=0.001) == [3]


async def test_until_accepts_a_plain_function() -> None:
    values = iter([0, None, "", "ready"])
    assert await until(lambda: next(values), timeout=5, interval=0.001) == "ready"


async def test_until_times_out_naming_what_it_awaited_and_the_last_value() -> None:
    with pytest.raises(TimeoutError, match=r"waited 0.05s for the door to open; last value: 0"):
        await until(lambda: 0, timeout=0.05, interval=0.01, what="the door to open")


async def test_until_retries_an_exception_and_reports_the_last_one_on_timeout() -> None:
    def check() -> bool:
        raise KeyError("missing")

    with pytest.raises(TimeoutError, match=r"last error: KeyError\('missing'\)") as info:
        await until(check, timeout=0.05, interval=0.01)
    assert isinstance(info.value.__cause__, KeyError)
    assert "check" in str(info.value)


async def test_until_recovers_from_an_exception_that_goes_away() -> None:
    calls = []

    def check() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")
        return "up"

    assert await until(check, timeout=5, interval=0.001) == "up"


async def test_until_lets_an_exception_through_when_told_not_to_retry_it() -> None:
    def check() -> bool:
        raise RuntimeError("broken")

    with pytest.raises(RuntimeError, match="broken"):
        await until(check, timeout=5, retry_on=())


async def test_until_bounds_a_check_that_hangs() -> None:
    async def hang() -> bool:
        await asyncio.Event().wait()
        return True

    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError, match="hang"):
        await until(hang, timeout=0.1)
    assert loop.time() - start < 2


async def test_until_checks_once_more_at_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.1
    # interval longer than the timeout: the first check fails, the one at the deadline holds
    assert await until(lambda: loop.time() >= deadline, timeout=0.1, interval=5) is True
