"""Typed contracts on the wire: JSON objects decoded into the dataclasses events and RPC name.

`decode(cls, doc)` builds `cls` from a parsed JSON value, checking the shape of every field it
knows and ignoring keys it does not (a newer producer may send more). A missing required field
or a value of the wrong kind raises `WireError`, naming where. Encoding needs no code here:
orjson writes dataclasses natively, so a request or reply dataclass goes on the wire as the same
JSON object the dict did; a class with its own `to_dict`/`from_dict` (Principal) uses those.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
Convert = Callable[[Any, str], Any]


class WireError(ValueError):
    """A JSON value does not fit the type it should become; `where` is its path."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.where = where

    @property
    def field(self) -> str:
        """The top-level field the bad value is in (`names` of `SnapshotRequest.names[2]`)."""
        _, _, rest = self.where.partition(".")
        return rest.replace("[", ".").split(".", 1)[0]


def decode(cls: type[T], doc: Any) -> T:
    """`doc` (parsed JSON) as a `cls`; raises WireError when it does not fit."""
    return _converter(cls)(doc, cls.__name__)


def encode(obj: Any) -> Any:
    """What orjson should write for `obj`: its `to_dict()` when it has one, else itself."""
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if callable(to_dict) else obj


@functools.cache
def _converter(tp: Any) -> Convert:
    """The checking converter of one type (built once per type)."""
    if tp is Any or tp is object:
        return _same
    if isinstance(tp, type) and callable(getattr(tp, "from_dict", None)):
        return _custom(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _union(args)
    if origin in (list, Sequence, tuple, frozenset, set):
        return _sequence(origin, args)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        return _mapping(args)
    if tp in (list, tuple):
        return _sequence(tp, ())
    if tp is bool:
        return _exact(bool, "a boolean")
    if tp is str:
        return _exact(str, "a string")
    if tp is int:
        return _int
    if tp is float:
        return _float
    raise TypeError(f"wire: no converter for {tp!r}")


def _same(value: Any, where: str) -> Any:
    """Any JSON value, as it is."""
    return value


def _fail(where: str, wanted: str, value: Any) -> WireError:
    """The error for a value of the wrong kind."""
    return WireError(f"{where} must be {wanted} (got {type(value).__name__})", where)


def _exact(kind: type, wanted: str) -> Convert:
    """A value of exactly `kind` (a bool is not taken for an int)."""

    def convert(value: Any, where: str) -> Any:
        if type(value) is not kind:
            raise _fail(where, wanted, value)
        return value

    return convert


def _int(value: Any, where: str) -> int:
    """An integer (not a bool)."""
    if type(value) is not int:
        raise _fail(where, "an integer", value)
    return value


def _float(value: Any, where: str) -> float:
    """A number (an integer is taken too)."""
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise _fail(where, "a number", value)


def _union(args: tuple[Any, ...]) -> Convert:
    """`X | None` (None passes), or the first member that fits."""
    members = [_converter(a) for a in args if a is not type(None)]
    optional = type(None) in args

    def convert(value: Any, where: str) -> Any:
        if value is None:
            if optional:
                return None
            raise WireError(f"{where} is required (got null)", where)
        if len(members) == 1:
            return members[0](value, where)
        for member in members:
            try:
                return member(value, where)
            except WireError:
                continue
        raise _fail(where, " or ".join(str(a) for a in args), value)

    return convert


def _sequence(origin: Any, args: tuple[Any, ...]) -> Convert:
    """A JSON array as a list, tuple or frozenset of checked items."""
    item = _converter(args[0]) if args and args[0] is not Ellipsis else _same
    build: Callable[[Any], Any] = {tuple: tuple, frozenset: frozenset, set: set}.get(origin, list)

    def convert(value: Any, where: str) -> Any:
        if not isinstance(value, list):
            raise _fail(where, "an array", value)
        if item is _same:
            return value if build is list else build(value)
        return build(item(v, f"{where}[{i}]") for i, v in enumerate(value))

    return convert


def _mapping(args: tuple[Any, ...]) -> Convert:
    """A JSON object; its values checked when their type is not Any."""
    value_of = _converter(args[1]) if len(args) == 2 else _same

    def convert(value: Any, where: str) -> Any:
        if not isinstance(value, dict):
            raise _fail(where, "an object", value)
        if value_of is _same:
            return value
        return {k: value_of(v, f"{where}.{k}") for k, v in value.items()}

    return convert


def _custom(cls: type) -> Convert:
    """A class that parses its own JSON form (`from_dict`)."""

    def convert(value: Any, where: str) -> Any:
        if not isinstance(value, dict):
            raise _fail(where, "an object", value)
        try:
            return cls.from_dict(value)  # type: ignore[attr-defined]
        except (KeyError, TypeError, ValueError) as exc:
            raise WireError(f"{where} is not a {cls.__name__}: {exc!r}", where) from None

    return convert


def _dataclass(cls: type) -> Convert:
    """A JSON object as a dataclass: known fields checked, unknown keys ignored."""
    hints = typing.get_type_hints(cls)
    fields = [
        (
            f.name,
            _converter(hints[f.name]),
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
        if f.init
    ]

    def convert(value: Any, where: str) -> Any:
        if not isinstance(value, dict):
            raise _fail(where, "an object", value)
        kwargs = {}
        for name, field_of, required in fields:
            if name in value:
                kwargs[name] = field_of(value[name], f"{where}.{name}")
            elif required:
                raise WireError(f"{where}.{name} is required", f"{where}.{name}")
        return cls(**kwargs)

    return convert
