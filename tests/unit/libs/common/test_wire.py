"""JSON objects decode into the dataclasses they name, checked, with unknown keys ignored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from libs.common import wire


@dataclass(frozen=True)
class Part:
    """A nested item."""

    name: str
    size: float = 0.0


@dataclass(frozen=True)
class Whole:
    """Every kind of field the contracts use."""

    id: str
    count: int
    parts: list[Part]
    flags: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    enabled: bool = True
    raw: Any = None


def test_a_dataclass_round_trips_through_json() -> None:
    whole = Whole("w", 2, [Part("a", 1.5), Part("b")], ("x",), {"k": [1]}, "hi", False, {"z": 1})
    assert wire.decode(Whole, orjson.loads(orjson.dumps(whole))) == whole


def test_unknown_keys_are_ignored_and_defaults_fill_absent_fields() -> None:
    doc = {"id": "w", "count": 1, "parts": [{"name": "a", "colour": "red"}], "later": True}
    assert wire.decode(Whole, doc) == Whole("w", 1, [Part("a")])


def test_an_integer_is_taken_for_a_number_but_a_bool_is_not_an_integer() -> None:
    assert wire.decode(Part, {"name": "a", "size": 3}).size == 3.0
    with pytest.raises(wire.WireError, match=r"Whole.count must be an integer \(got bool\)"):
        wire.decode(Whole, {"id": "w", "count": True, "parts": []})


def test_errors_name_the_path_of_the_bad_value() -> None:
    with pytest.raises(wire.WireError, match=r"Whole.parts\[1\].name is required"):
        wire.decode(Whole, {"id": "w", "count": 1, "parts": [{"name": "a"}, {}]})
    with pytest.raises(wire.WireError, match=r"Whole.note must be a string"):
        wire.decode(Whole, {"id": "w", "count": 1, "parts": [], "note": 5})
    with pytest.raises(wire.WireError, match=r"Whole must be an object"):
        wire.decode(Whole, [])


def test_null_is_refused_where_the_field_is_not_optional() -> None:
    with pytest.raises(wire.WireError, match="Whole.id must be a string"):
        wire.decode(Whole, {"id": None, "count": 1, "parts": []})
    assert wire.decode(Whole, {"id": "w", "count": 1, "parts": [], "note": None}).note is None


def test_encode_uses_a_classes_own_json_form() -> None:
    class Own:
        def to_dict(self) -> dict[str, int]:
            return {"n": 1}

    assert wire.encode(Own()) == {"n": 1}
    assert wire.encode(Part("a")) == Part("a")  # orjson writes dataclasses itself
