"""The event envelope round-trips and refuses what is not one."""

import uuid

import pytest

from libs.common.events import (
    SERVER_STATUS,
    SERVER_UPDATED,
    SETTINGS_UPDATED,
    TOOL_CALLED,
    Event,
    PayloadError,
    ServerStatusChanged,
    ServiceStopping,
    SettingsUpdated,
    ToolCalled,
    decode,
    new_id,
    platform_event,
    type_of,
)


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


def server_status_event(**data: object) -> Event:
    """A registry.server.status envelope carrying `data` as it came off the wire."""
    return Event(type=SERVER_STATUS.name, source="registry", data=dict(data))


def test_decode_gives_the_payload_dataclass() -> None:
    event = TOOL_CALLED.event(ToolCalled(server="s", tool="t", status="ok"), source="gateway")
    again = Event.from_bytes(event.to_bytes())
    assert TOOL_CALLED.decode(again) == ToolCalled(server="s", tool="t", status="ok")


def test_decode_ignores_keys_a_newer_producer_added() -> None:
    event = server_status_event(
        server="s", server_id="1", version=3, status="healthy", previous="unknown", shiny="new"
    )
    payload = SERVER_STATUS.decode(event)
    assert payload == ServerStatusChanged("s", "1", 3, "healthy", "unknown")


def test_decode_of_a_payload_missing_a_required_field_raises_payload_error() -> None:
    event = server_status_event(server="s", status="healthy", previous="unknown", version=1)
    with pytest.raises(PayloadError, match="server_id is required"):
        SERVER_STATUS.decode(event)


def test_decode_of_a_field_of_the_wrong_shape_raises_payload_error() -> None:
    event = server_status_event(
        server="s", server_id="1", version="three", status="healthy", previous="unknown"
    )
    with pytest.raises(PayloadError, match="version must be an integer"):
        SERVER_STATUS.decode(event)
    data = {"server": "s", "server_id": "1", "version": 1, "changed": "tools"}
    listing = Event(type=SERVER_UPDATED.name, source="registry", data=data)
    with pytest.raises(PayloadError, match="changed must be an array"):
        SERVER_UPDATED.decode(listing)


def test_decode_of_another_type_of_event_raises_payload_error() -> None:
    event = server_status_event(server="s", server_id="1", version=1, status="ok", previous="x")
    with pytest.raises(PayloadError, match="expected a registry.server.updated event"):
        SERVER_UPDATED.decode(event)


def test_a_misshapen_payload_reaches_callers_that_catch_value_errors() -> None:
    event = server_status_event(
        server="s", server_id="1", version="three", status="healthy", previous="unknown"
    )
    with pytest.raises(ValueError, match="version must be an integer"):
        SERVER_STATUS.decode(event)


def test_any_known_event_decodes_by_its_type_and_an_unknown_one_is_refused() -> None:
    event = SETTINGS_UPDATED.event(SettingsUpdated("k", 2, value=[1]), source="registry")
    assert decode(event) == SettingsUpdated("k", 2, value=[1])
    assert type_of(SETTINGS_UPDATED.name) is SETTINGS_UPDATED
    with pytest.raises(PayloadError):
        decode(Event(type="demo.widget.created", source="demo", data={}))


def test_platform_events_are_known_by_their_verb() -> None:
    kind = platform_event("gateway.service.stopping")
    assert kind is not None and kind.payload is ServiceStopping
    event = kind.event(ServiceStopping("gateway", "g-1"), source="gateway")
    assert kind.decode(event) == ServiceStopping("gateway", "g-1")
    assert platform_event("gateway.service.exploded") is None
    assert platform_event("registry.server.updated") is None


def test_event_ids_are_distinct_version_4_uuids_in_canonical_form() -> None:
    ids = [Event(type="t", source="s", data={}).id for _ in range(2000)] + [new_id()]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
