"""metrics.measured(_batch) count applied events once, by kind; not duplicates or failures."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from libs.common.events import TOOL_CALLED, ToolCalled
from services.audit import metrics


def counted(kind: str) -> float:
    return REGISTRY.get_sample_value("switchboard_audit_records_written_total", {"kind": kind}) or 0


async def test_applied_duplicate_and_failed_events() -> None:
    event = TOOL_CALLED.event(ToolCalled(server="s", tool="t", status="ok"), source="gateway")
    written: dict[str, str] = {}
    seen: set[str] = set()

    async def apply(e) -> None:  # the transactional handler: fresh ids only
        if e.id not in seen:
            seen.add(e.id)
            written[e.id] = "call"

    run = metrics.measured(apply, written)
    before = counted("call")
    await run(event)
    await run(event)  # a redelivery
    assert counted("call") == before + 1

    async def failing(e) -> None:
        written[e.id] = "activity"
        raise RuntimeError("rolled back")

    before_activity = counted("activity")
    with pytest.raises(RuntimeError):
        await metrics.measured(failing, written)(event)
    assert counted("activity") == before_activity
    assert written == {}


def write_count() -> float:
    return REGISTRY.get_sample_value("switchboard_audit_write_duration_seconds_count") or 0


async def test_a_batch_counts_its_fresh_records_by_kind_and_one_write() -> None:
    events = [
        TOOL_CALLED.event(ToolCalled(server="s", tool=f"t{i}", status="ok"), source="gateway")
        for i in range(3)
    ]
    written: dict[str, str] = {}

    async def apply(batch) -> None:  # the first event was applied before: nothing written
        for e in batch[1:]:
            written[e.id] = "call"

    run = metrics.measured_batch(apply, written)
    calls, writes = counted("call"), write_count()
    await run(events)
    assert counted("call") == calls + 2
    assert write_count() == writes + 1
    assert written == {}

    async def failing(batch) -> None:
        written[batch[0].id] = "call"
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await metrics.measured_batch(failing, written)(events)
    assert counted("call") == calls + 2
    assert write_count() == writes + 1
    assert written == {}
