"""Turning events into records: tool-call rows and the target/before/after of activity."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from libs.common.events import SERVER_CREATED, SERVER_STATUS, SERVER_UPDATED, Event
from libs.common.redaction import POLICIES, redact

TARGET_KEYS = ("server", "name", "slug", "key", "email", "tool", "id", "user_id", "org_id")
SERVER_STATUS_TYPES = (SERVER_STATUS.name, SERVER_CREATED.name, SERVER_UPDATED.name)
ARGUMENTS_SETTING = "audit_arguments"


def call_row(event: Event, policy: str, at: datetime) -> dict[str, Any]:
    """A tools_calls row from a `gateway.tool.called` event, arguments redacted per `policy`."""
    d = event.data
    arguments = d.get("arguments")
    return {
        "id": event.id,
        "time": at,
        "server": str(d.get("server") or ""),
        "tool": str(d.get("tool") or ""),
        "status": str(d.get("status") or "ok"),
        "principal_kind": d.get("principal_kind"),
        "principal_id": d.get("principal_id") or event.actor,
        "principal_name": d.get("principal_name"),
        "credential_id": d.get("credential_id"),
        "org": d.get("org") or event.org,  # the server's org (docs/TENANCY.md)
        "caller_org": d.get("caller_org"),
        "team": d.get("team"),
        "endpoint": d.get("endpoint"),
        "method": d.get("method"),
        "error_code": _int(d.get("error_code")),
        "error_message": d.get("error_message"),
        "latency_ms": _float(d.get("latency_ms")) or 0.0,
        "upstream_ms": _float(d.get("upstream_ms")),
        "request_bytes": _int(d.get("request_bytes")) or 0,
        "response_bytes": _int(d.get("response_bytes")) or 0,
        "arguments": redact(arguments if isinstance(arguments, dict) else None, policy),
        "session_id": d.get("session_id"),
        "client": d.get("client"),
        "trace_id": event.trace_id,
        "tool_fingerprint": d.get("tool_fingerprint"),
    }


def activity_fields(event: Event) -> dict[str, Any]:
    """The target, before and after an activity record shows (when the event carries them)."""
    d = event.data
    target = next((str(d[k]) for k in TARGET_KEYS if d.get(k) not in (None, "")), None)
    return {"target": target, "before": d.get("before"), "after": d.get("after")}


def arguments_policy(event: Event) -> str | None:
    """The new `audit_arguments` policy when a settings event carries it, else None."""
    d = event.data
    if d.get("key") != ARGUMENTS_SETTING:
        return None
    value = d.get(
        "value", (d.get("after") or {}).get("value") if isinstance(d.get("after"), dict) else None
    )
    return value if value in POLICIES else None


def tool_call_live(event: Event, policy: str) -> dict[str, Any]:
    """What /ws/events shows of a tool call: the event, its arguments redacted per `policy` (the
    store's: the live stream never shows more than the record keeps)."""
    arguments = event.data.get("arguments")
    return {k: v for k, v in event.data.items() if k != "arguments"} | {
        "arguments": redact(arguments if isinstance(arguments, dict) else None, policy),
        "id": event.id,
        "time": event.time,
    }


def _int(value: Any) -> int | None:
    """An int, or None when absent or not a number."""
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    """A float, or None when absent or not a number."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None
