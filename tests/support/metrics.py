"""Read a service's /metrics over HTTP, as Prometheus would."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: httpx.AsyncClient, path: str = "/metrics") -> Samples:
    """Every sample of the service's exposition: {(name, labels): value}."""
    resp = await http.get(path)
    assert resp.status_code == 200, resp.text
    samples: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the series is not there yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
