"""metrics.measured counts an applied event once, by kind; not duplicates or failures."""

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
