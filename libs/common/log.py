"""JSON logs with structlog: service, request id and trace id on every line, secrets masked."""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
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
