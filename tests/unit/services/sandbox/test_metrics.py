"""Sandbox metrics' pure parts: processes by state, bounded limit kinds."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import REGISTRY

from services.sandbox import metrics


def manager(*states: str, closed: bool = False) -> SimpleNamespace:
    """What `states` reads of a ProcessManager: its processes' states and whether it closed."""
    procs = {str(i): SimpleNamespace(state=state) for i, state in enumerate(states)}
    return SimpleNamespace(processes=procs, closed=closed)


def test_states_counts_every_known_state_over_open_managers() -> None:
    counts = metrics.states([manager("running", "running", "backoff"), manager("running")])
    assert counts["running"] == 3
    assert counts["backoff"] == 1
    assert counts["failed"] == 0
    assert set(counts) == set(metrics.STATES)
    assert metrics.states([manager("running", closed=True)])["running"] == 0


def test_limit_kill_ignores_none_and_unknown_kinds() -> None:
    def total() -> float:
        return sum(
            REGISTRY.get_sample_value("switchboard_sandbox_limit_kills_total", {"limit": k}) or 0
            for k in metrics.LIMITS
        )

    before = total()
    metrics.limit_kill(None)
    metrics.limit_kill("made-up")
    assert total() == before
    metrics.limit_kill("cpu")
    assert total() == before + 1
    assert (
        REGISTRY.get_sample_value("switchboard_sandbox_limit_kills_total", {"limit": "made-up"})
        is None
    )
