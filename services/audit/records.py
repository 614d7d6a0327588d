"""Turning events into records: tool-call rows and the target/before/after of activity."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

from libs.common.events import SERVER_UPDATED, TOOL_CHANGE_EVENTS, Event, ToolChanged
from libs.common.redaction import POLICIES, redact

TARGET_KEYS = ("server", "name", "slug", "key", "email", "tool", "id", "user_id", "org_id")
SERVER_STATUS_TYPES = (
    "registry.server.status",
    "registry.server.created",
    "registry.server.updated",
)
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


def tool_facts(event: Event) -> list[Event]:
    """The per-tool facts a `server.updated` change summary stands for, as the tool events they
    are (`registry.tool.discovered`...), each with an id derived from the summary's (stored once
    however often the summary is delivered). Other events stand for none."""
    items = event.data.get("tool_changes")
    if event.type != SERVER_UPDATED.name or not isinstance(items, list):
        return []
    server, version = str(event.data.get("server") or ""), event.data.get("version") or 0
    facts = []
    for item in items:
        kind = TOOL_CHANGE_EVENTS.get(item.get("change")) if isinstance(item, dict) else None
        if kind is None or not isinstance(item.get("tool"), str):
            continue
        payload = ToolChanged(
            server,
            item["tool"],
            version,
            str(item.get("state") or ""),
            bool(item.get("routable")),
            item.get("fingerprint"),
            list(item.get("flags") or []),
        )
        fact_id = uuid.uuid5(uuid.NAMESPACE_OID, f"{event.id}/{kind.name}/{item['tool']}")
        facts.append(
            dataclasses.replace(
                event, type=kind.name, data=dataclasses.asdict(payload), id=str(fact_id)
            )
        )
    return facts


def without_tool_changes(event: Event) -> Event:
    """The event as its own activity shows it: a summary's per-tool detail is in its facts."""
    if "tool_changes" not in event.data:
        return event
    data = {k: v for k, v in event.data.items() if k != "tool_changes"}
    return dataclasses.replace(event, data=data)


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
