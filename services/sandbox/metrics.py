"""Sandbox metrics: processes by state, starts, restarts, limit kills, spawn latency, egress, scans.

Labels are bounded (states, outcomes, limit kinds, egress reasons); never server names."""

from __future__ import annotations

import weakref
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

STATES = ("starting", "running", "backoff", "crashed", "failed", "stopping", "stopped")
STARTS = Counter(
    "switchboard_sandbox_process_starts_total",
    "Hosted process starts (spawn and MCP initialize), by outcome: ok or failed.",
    ["outcome"],
)
RESTARTS = Counter(
    "switchboard_sandbox_process_restarts_total",
    "Unexpected exits of hosted processes that were scheduled for a restart (with backoff).",
)
LIMITS = ("timeout", "cpu", "memory", "file_size", "processes", "unresponsive")
LIMIT_KILLS = Counter(
    "switchboard_sandbox_limit_kills_total",
    "Sandboxed runs ended by a limit, by kind: timeout, cpu, memory, file_size, processes "
    "(code tools and scans), unresponsive (a hosted process killed after a failed health ping).",
    ["limit"],
)
SPAWN_SECONDS = Histogram(
    "switchboard_sandbox_spawn_duration_seconds",
    "Time from a hosted process's start to the end of its MCP initialize handshake.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
EGRESS_REASONS = ("allowed", "not_allowlisted", "address_refused", "bad_request")
EGRESS = Counter(
    "switchboard_sandbox_egress_requests_total",
    "Connections through the egress proxy by decision (allowed, denied) and reason "
    "(allowed, not_allowlisted, address_refused, bad_request).",
    ["decision", "reason"],
)
SCAN_OUTCOMES = ("scanned", "refused", "error")
SCANS = Counter(
    "switchboard_sandbox_scans_total",
    "Source scans run for the registry's catalog, by outcome: scanned, refused, error.",
    ["outcome"],
)

_STARTS = {outcome: STARTS.labels(outcome) for outcome in ("ok", "failed")}
_LIMIT_KILLS = {kind: LIMIT_KILLS.labels(kind) for kind in LIMITS}
_EGRESS = {
    reason: EGRESS.labels("allowed" if reason == "allowed" else "denied", reason)
    for reason in EGRESS_REASONS
}
_SCANS = {outcome: SCANS.labels(outcome) for outcome in SCAN_OUTCOMES}


def started(ok: bool, seconds: float | None = None) -> None:
    """Count one start; a successful one's spawn latency is recorded too."""
    _STARTS["ok" if ok else "failed"].inc()
    if ok and seconds is not None:
        SPAWN_SECONDS.observe(seconds)


def limit_kill(limit: str | None) -> None:
    """Count a run a limit ended (None, or an unknown kind, counts nothing)."""
    child = _LIMIT_KILLS.get(limit or "")
    if child is not None:
        child.inc()


def egress(reason: str) -> None:
    """Count one egress decision."""
    _EGRESS[reason].inc()


def scanned(outcome: str) -> None:
    """Count one scan by outcome."""
    child = _SCANS.get(outcome)
    if child is not None:
        child.inc()


_MANAGERS: weakref.WeakSet[Any] = weakref.WeakSet()


def track(manager: Any) -> None:
    """Report this process manager's processes by state (until it is closed or collected)."""
    _MANAGERS.add(manager)


def states(managers: Any) -> dict[str, int]:
    """Processes by state over the managers still open (every known state, 0 when none)."""
    tally = Tally(
        proc.state
        for manager in managers
        if not manager.closed
        for proc in list(manager.processes.values())
    )
    return {state: tally.get(state, 0) for state in STATES}


class ProcessCollector(Collector):
    """switchboard_sandbox_processes, read at scrape time from the process managers."""

    def collect(self) -> Iterator[Any]:
        """One sample per state."""
        family = GaugeMetricFamily(
            "switchboard_sandbox_processes", "Hosted processes by state.", labels=["state"]
        )
        for state, count in states(list(_MANAGERS)).items():
            family.add_metric([state], count)
        yield family


REGISTRY.register(ProcessCollector())
