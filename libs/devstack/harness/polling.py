"""One bounded wait for a condition: `await until(check, timeout=..., interval=...)`."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def until(
    check: Callable[[], Awaitable[T] | T],
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str | None = None,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """Call `check` (sync or async) until it returns something truthy, and return that.

    An exception of `retry_on` counts as "not yet" (pass `retry_on=()` to let it through). The
    check is called at least once, and once more at the deadline; after that a `TimeoutError`
    names `what` (default: the check's name) and the last value or exception it gave.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    error: BaseException | None = None
    while True:
        scope = asyncio.timeout_at(deadline)
        try:
            async with scope:
                value = check()
                if inspect.isawaitable(value):
                    value = await value
        except retry_on as exc:
            if scope.expired():
                break
            error = exc
        else:
            if value:
                return value  # type: ignore[return-value]
            last, error = value, None
        if loop.time() >= deadline:
            break
        await asyncio.sleep(min(interval, max(0.0, deadline - loop.time())))
    name = what or getattr(check, "__qualname__", repr(check))
    seen = f"last error: {error!r}" if error is not None else f"last value: {last!r}"
    raise TimeoutError(f"waited {timeout:g}s for {name}; {seen}") from error
