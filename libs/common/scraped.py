"""Figures read from Postgres or NATS when Prometheus scrapes, at most once per TTL.

A `Scraped` collector declares its metric families up front (so they are known before any read)
and takes its samples from an async reader the service attaches in its lifespan. GET /metrics
awaits `refresh_all()` before rendering: a reader runs only when its figures are older than the
TTL, concurrent scrapes share one read, and a failed or slow read leaves the families empty
until the next TTL rather than answering with stale figures or holding the scrape up. Nothing
here runs per request, and a collector with no reader attached costs one check per scrape.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = structlog.get_logger()

# family name → [(label values, value)]
Samples = dict[str, list[tuple[tuple[str, ...], float]]]
Reader = Callable[[], Awaitable[Samples]]


@dataclass(frozen=True)
class Family:
    """A family a Scraped collector exports: a gauge, or a counter (named without _total)."""

    name: str
    documentation: str
    labels: tuple[str, ...] = ()
    counter: bool = False

    def build(self, samples: Sequence[tuple[tuple[str, ...], float]]) -> Any:
        """The prometheus_client family with these samples."""
        kind = CounterMetricFamily if self.counter else GaugeMetricFamily
        family = kind(self.name, self.documentation, labels=list(self.labels))
        for values, value in samples:
            family.add_metric(list(values), value)
        return family


class Scraped(Collector):
    """Families whose samples an attached reader provides, cached for `ttl_s`."""

    def __init__(
        self,
        name: str,
        families: Sequence[Family],
        ttl_s: float,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.families = tuple(families)
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._readers: list[Reader] = []  # the latest attached is read (a service's lifespan)
        self._samples: Samples = {}
        self._read_at = -math.inf
        self._lock = asyncio.Lock()

    def attach(self, reader: Reader, ttl_s: float | None = None) -> None:
        """Read through `reader` from now on (its figures are read at the next scrape)."""
        self._readers.append(reader)
        if ttl_s is not None:
            self.ttl_s = ttl_s
        self._forget()

    def detach(self, reader: Reader) -> None:
        """Stop reading through `reader`; with no reader left the families are empty."""
        self._readers = [r for r in self._readers if r is not reader]
        self._forget()

    def _forget(self) -> None:
        """Drop the cached figures: the next scrape reads afresh."""
        self._samples = {}
        self._read_at = -math.inf

    def fresh(self) -> bool:
        """Whether the cached figures are younger than the TTL."""
        return self._clock() - self._read_at < self.ttl_s

    async def refresh(self) -> None:
        """Read the figures unless the cached ones are fresh; one read at a time."""
        if not self._readers or self.fresh():
            return
        async with self._lock:
            if self.fresh() or not self._readers:
                return  # another scrape read them while this one waited
            reader = self._readers[-1]
            try:
                async with asyncio.timeout(self.timeout_s):
                    self._samples = await reader()
            except Exception as exc:
                self._samples = {}
                error = str(exc) or type(exc).__name__
                log.warning("scraped_figures_not_read", figures=self.name, error=error)
            self._read_at = self._clock()

    def collect(self) -> Iterator[Any]:
        """Every family, with the cached samples (none before the first read)."""
        for family in self.families:
            yield family.build(self._samples.get(family.name, ()))


_REGISTERED: list[Scraped] = []


def register(scraped: Scraped) -> Scraped:
    """Export `scraped` from the default registry and refresh it at each GET /metrics."""
    REGISTRY.register(scraped)
    _REGISTERED.append(scraped)
    return scraped


async def refresh_all() -> None:
    """Refresh every registered collector that has a reader (GET /metrics calls this)."""
    due = [s for s in _REGISTERED if s._readers and not s.fresh()]
    if due:
        await asyncio.gather(*(s.refresh() for s in due))
