"""Scraped figures: read once per TTL, shared by concurrent scrapes, empty after a failure."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, generate_latest

from libs.common.scraped import Family, Samples, Scraped

FAMILIES = (
    Family("demo_rows", "Rows.", ("table",)),
    Family("demo_deadlocks", "Deadlocks.", counter=True),
)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingReader:
    """A reader that counts its reads and can be made to fail or stall."""

    def __init__(self) -> None:
        self.reads = 0
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> Samples:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise OSError("connection refused")
        return {"demo_rows": [(("a",), float(self.reads))], "demo_deadlocks": [((), 2.0)]}


def exposition(scraped: Scraped) -> str:
    registry = CollectorRegistry()
    registry.register(scraped)
    return generate_latest(registry).decode()


async def test_figures_are_read_once_per_ttl_however_often_prometheus_scrapes() -> None:
    clock, reader = Clock(), CountingReader()
    scraped = Scraped("demo", FAMILIES, ttl_s=15, clock=clock)
    scraped.attach(reader)
    for _ in range(5):
        await scraped.refresh()
    assert reader.reads == 1
    assert 'demo_rows{table="a"} 1.0' in exposition(scraped)
    clock.now += 14.9
    await scraped.refresh()
    assert reader.reads == 1
    clock.now += 0.2
    await scraped.refresh()
    assert reader.reads == 2
    assert 'demo_rows{table="a"} 2.0' in exposition(scraped)


async def test_counters_are_exported_with_their_total_suffix() -> None:
    scraped = Scraped("demo", FAMILIES, ttl_s=15, clock=Clock())
    scraped.attach(CountingReader())
    await scraped.refresh()
    text = exposition(scraped)
    assert "# TYPE demo_deadlocks_total counter" in text
    assert "demo_deadlocks_total 2.0" in text


async def test_concurrent_scrapes_share_one_read() -> None:
    reader = CountingReader()
    reader.gate = asyncio.Event()
    scraped = Scraped("demo", FAMILIES, ttl_s=15, clock=Clock())
    scraped.attach(reader)
    waiting = [asyncio.create_task(scraped.refresh()) for _ in range(4)]
    await asyncio.sleep(0)
    reader.gate.set()
    await asyncio.gather(*waiting)
    assert reader.reads == 1


async def test_a_failed_read_empties_the_families_and_is_not_retried_before_the_ttl() -> None:
    clock, reader = Clock(), CountingReader()
    scraped = Scraped("demo", FAMILIES, ttl_s=15, clock=clock)
    scraped.attach(reader)
    await scraped.refresh()
    reader.fail = True
    clock.now += 20
    await scraped.refresh()
    await scraped.refresh()
    assert reader.reads == 2
    text = exposition(scraped)
    assert "# TYPE demo_rows gauge" in text and "demo_rows{" not in text


async def test_a_read_slower_than_the_timeout_gives_up_and_leaves_the_families_empty() -> None:
    reader = CountingReader()
    reader.gate = asyncio.Event()  # never set: the read hangs
    scraped = Scraped("demo", FAMILIES, ttl_s=15, timeout_s=0.05, clock=Clock())
    scraped.attach(reader)
    async with asyncio.timeout(5):
        await scraped.refresh()
    assert "demo_rows{" not in exposition(scraped)


async def test_without_a_reader_the_families_are_declared_and_nothing_is_read() -> None:
    scraped = Scraped("demo", FAMILIES, ttl_s=15, clock=Clock())
    await scraped.refresh()
    text = exposition(scraped)
    assert "# HELP demo_rows Rows." in text and "demo_rows{" not in text


async def test_the_latest_attached_reader_is_read_until_it_is_detached() -> None:
    clock, first, second = Clock(), CountingReader(), CountingReader()
    scraped = Scraped("demo", FAMILIES, ttl_s=15, clock=clock)
    scraped.attach(first)
    scraped.attach(second)
    await scraped.refresh()
    assert (first.reads, second.reads) == (0, 1)
    scraped.detach(second)
    await scraped.refresh()  # detaching forgets the cached figures
    assert (first.reads, second.reads) == (1, 1)
