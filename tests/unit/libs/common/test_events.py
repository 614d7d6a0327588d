"""The event envelope round-trips and refuses what is not one."""

import pytest

from libs.common.events import TOOL_CALLED, Event, ToolCalled


def test_an_event_round_trips_through_bytes() -> None:
    event = TOOL_CALLED.event(
        ToolCalled(server="s", tool="t", status="ok"), source="gateway", actor="u1", org="o1"
    )
    again = Event.from_bytes(event.to_bytes())
    assert again == event
    assert again.subject == "events.gateway.tool.called"
    assert again.data["server"] == "s"


def test_bytes_that_are_not_an_envelope_are_refused() -> None:
    with pytest.raises(ValueError):
        Event.from_bytes(b'{"type": "x"}')
    with pytest.raises(ValueError):
        Event.from_bytes(b"not json")
