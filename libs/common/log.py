"""JSON logs with structlog: service, request id and trace id on every line, secrets masked.

`LOG_LEVEL` sets the level of every logger; `LOG_LEVELS` (`access=warning,registry.health=debug`)
sets named ones: the access line (`access`, written by `access_line` without the structlog chain)
and loggers made with `get_logger(name)`, whose lines carry `"logger": name`.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections import deque
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

request_id_var: ContextVar[str] = ContextVar("request_id", default="")
trace_id_var: ContextVar[str] = ContextVar("trace_id", default="")

SECRET_KEY_PATTERN = re.compile(
    r"pass(word)?|secret|token|api[_-]?key|authorization|cookie|credential|private|mfa_code",
    re.IGNORECASE,
)
SECRET_VALUE_PATTERN = re.compile(r"\b(sbk_|sbt_|sba_|eyJ)[A-Za-z0-9_\-\.]{8,}")
MASK = "***"

LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50}
# structlog's method names, by level
METHOD_LEVELS = {**LEVELS, "exception": 40, "fatal": 50, "msg": 20}
ACCESS = "access"  # the logger name of the `http_request` line


def mask_secrets(value: Any, depth: int = 0) -> Any:
    """Replace secret-looking keys' values and token-looking strings with a mask."""
    if depth > 6:
        return value
    if isinstance(value, dict):
        return {
            k: MASK
            if isinstance(k, str) and SECRET_KEY_PATTERN.search(k)
            else mask_secrets(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v, depth + 1) for v in value]
    if isinstance(value, str):
        return SECRET_VALUE_PATTERN.sub(lambda m: m.group(1) + MASK, value)
    return value


def parse_level(text: str) -> int:
    """The numeric level of `debug`, `info`, `warning`, `error` or `critical` (ValueError else)."""
    level = LEVELS.get(text.strip().lower())
    if level is None:
        raise ValueError(f"{text.strip()!r} is not a level (debug, info, warning, error, critical)")
    return level


def parse_levels(text: str) -> dict[str, int]:
    """`name=level,name=level` → {name: numeric level}; ValueError naming the bad part."""
    levels: dict[str, int] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, sep, level = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{part.strip()!r} is not name=level")
        levels[name.strip()] = parse_level(level)
    return levels


def get_logger(name: str) -> Any:
    """A logger whose level `LOG_LEVELS` can set by `name`; its lines carry `"logger": name`."""
    return structlog.get_logger(name)


class _NamedLogger(structlog.PrintLogger):
    """structlog's print logger with the name it was asked for (processors receive it)."""

    def __init__(self, file: Any, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedLoggerFactory:
    """Make a `_NamedLogger` per line: `get_logger(name)` passes the name, others none."""

    def __init__(self, file: Any) -> None:
        self.file = file

    def __call__(self, *args: Any) -> _NamedLogger:
        return _NamedLogger(self.file, args[0] if args else "")


@functools.lru_cache(maxsize=512)
def _secret_key(key: str) -> bool:
    """Whether a field of this name holds a secret (field names are few: cached)."""
    return key not in ("event", "level") and SECRET_KEY_PATTERN.search(key) is not None


def _add_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Add the current request id and trace id."""
    event.setdefault("request_id", request_id_var.get())
    event.setdefault("trace_id", trace_id_var.get())
    return event


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Mask secrets anywhere in the event (in place: the event is the line's own copy)."""
    for key, value in event.items():
        if _secret_key(key):
            event[key] = MASK
        elif type(value) is str:
            if SECRET_VALUE_PATTERN.search(value):
                event[key] = mask_secrets(value)
        elif isinstance(value, (dict, list, tuple)):
            event[key] = mask_secrets(value)
    return event


def _dumps(obj: Any, **_: Any) -> str:
    """Serialise a log line with orjson."""
    return orjson.dumps(obj, default=str).decode()


# per-logger levels (LOG_LEVELS) over the default level, consulted only when some are set
_levels: dict[str, int] = {}
_default_level = logging.INFO


def _by_logger(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Name the line's logger, if it has a name, and drop the line below that logger's level."""
    name = getattr(logger, "name", "")
    if name:
        event["logger"] = name
    if _levels and METHOD_LEVELS.get(method, logging.INFO) < _levels.get(name, _default_level):
        raise structlog.DropEvent
    return event


# whether `info` lines, and the access line, are written: hot paths skip building one that
# would be dropped
info_enabled = True
access_enabled = True
_service = ""
_write: Callable[[bytes], None] | None = None  # the access line's writer, once configured


def configure(
    service: str, level: str = "info", stream: Any = None, levels: Mapping[str, int] | None = None
) -> None:
    """Send JSON lines to stderr (or `stream`), each carrying `service`; `levels` by logger name."""
    global info_enabled, access_enabled, _levels, _default_level, _service, _write
    numeric = LEVELS.get(level.strip().lower(), logging.INFO)
    _levels, _default_level, _service = dict(levels or {}), numeric, service
    info_enabled = numeric <= logging.INFO
    access_enabled = _levels.get(ACCESS, numeric) <= logging.INFO
    target = stream or sys.stderr
    _write = _writer(target)
    processors: list[Any] = [
        _by_logger,
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_context,
        structlog.processors.format_exc_info,
        _redact,
        structlog.processors.JSONRenderer(serializer=_dumps),
    ]
    structlog.configure(
        processors=processors,
        # the lowest level any logger is set to passes the wrapper; `_by_logger` does the rest
        wrapper_class=structlog.make_filtering_bound_logger(min([numeric, *_levels.values()])),
        logger_factory=_NamedLoggerFactory(target),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=target)


def _writer(stream: Any) -> Callable[[bytes], None]:
    """Write one rendered line to `stream` and flush it (to its byte buffer when it has one)."""
    raw = getattr(stream, "buffer", None)
    if raw is not None:

        def write_bytes(line: bytes) -> None:
            raw.write(line)
            raw.flush()

        return write_bytes

    def write_text(line: bytes) -> None:
        stream.write(line.decode())
        stream.flush()

    return write_text


def access_line(method: str, route: str, status: int, seconds: float) -> None:
    """Write the `http_request` line: its fields known, rendered once by orjson, no chain.

    The same fields as the structlog chain writes (and `"logger": "access"`); the request id,
    which the client chose, is masked like any value when it looks like a token."""
    if _write is None or not structlog.is_configured():  # unconfigured (tests): the chain's way
        get_logger(ACCESS).info(
            "http_request",
            method=method,
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 2),
        )
        return
    request_id = request_id_var.get()
    if SECRET_VALUE_PATTERN.search(request_id):
        request_id = mask_secrets(request_id)
    _write(
        orjson.dumps(
            {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "logger": ACCESS,
                "event": "http_request",
                "service": _service,
                "level": "info",
                "timestamp": datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z",
                "request_id": request_id,
                "trace_id": trace_id_var.get(),
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
    )


# ---- forwarding: WARNING and above also go to GET /api/v1/monitoring/logs (audit) -------------

FORWARDED_LEVELS = frozenset({"warning", "error", "critical", "exception"})
FORWARD_BUFFER = 1000  # lines a replica holds while NATS is away; the oldest are dropped
MAX_FIELDS_CHARS = 4000
# per service, the buffers of its live runtimes (several only when tests run replicas in one
# process): lines go to the newest, and when it stops to the one before
_sinks: dict[str, list[deque[dict[str, Any]]]] = {}


def _forward(_: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Copy a WARNING+ line, redacted, to the sink of the service that logged it."""
    level = str(event.get("level") or method).lower()
    if level not in FORWARDED_LEVELS or not _sinks:
        return event
    sinks = _sinks.get(str(event.get("service", "")))
    if not sinks:
        return event
    sink = sinks[-1]
    clean = _redact(None, "", dict(event))
    fields = {k: v for k, v in clean.items() if k not in ("event", "level", "service", "timestamp")}
    text = _dumps(fields)
    sink.append(
        {
            "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "level": "error" if level in ("exception", "critical") else level,
            "source": clean.get("service"),
            "event": str(clean.get("event", ""))[:500],
            "fields": fields if len(text) <= MAX_FIELDS_CHARS else {"truncated": text[:4000]},
        }
    )
    return event


def forward(service: str) -> deque[dict[str, Any]]:
    """Start keeping `service`'s WARNING+ lines in a bounded buffer for the runtime to publish."""
    sink: deque[dict[str, Any]] = deque(maxlen=FORWARD_BUFFER)
    _sinks.setdefault(service, []).append(sink)
    processors = list(structlog.get_config()["processors"])
    if _forward not in processors:  # before the renderer, which turns the dict into text
        processors.insert(max(len(processors) - 1, 0), _forward)
        structlog.configure(processors=processors)
    return sink


def stop_forwarding(service: str, sink: deque[dict[str, Any]]) -> None:
    """Stop keeping `service`'s lines in this buffer (an older live one takes them again)."""
    sinks = _sinks.get(service, [])
    if any(s is sink for s in sinks):
        sinks[:] = [s for s in sinks if s is not sink]
    if not sinks:
        _sinks.pop(service, None)
