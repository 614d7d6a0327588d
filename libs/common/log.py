"""JSON logs with structlog: service, request id and trace id on every line, secrets masked."""

from __future__ import annotations

import logging
import re
import sys
from collections import deque
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


def _add_context(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Add the current request id and trace id."""
    event.setdefault("request_id", request_id_var.get())
    event.setdefault("trace_id", trace_id_var.get())
    return event


def _redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Mask secrets anywhere in the event."""
    return {
        k: (
            MASK
            if k not in ("event", "level") and SECRET_KEY_PATTERN.search(k)
            else mask_secrets(v)
        )
        for k, v in event.items()
    }


def _dumps(obj: Any, **_: Any) -> str:
    """Serialise a log line with orjson."""
    return orjson.dumps(obj, default=str).decode()


# whether `info` lines are written: hot paths skip building one that would be dropped
info_enabled = True


def configure(service: str, level: str = "info", stream: Any = None) -> None:
    """Send JSON lines to stderr (or `stream`), each carrying `service`."""
    global info_enabled
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    info_enabled = numeric <= logging.INFO
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_context,
            structlog.processors.format_exc_info,
            _redact,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=stream or sys.stderr)


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
