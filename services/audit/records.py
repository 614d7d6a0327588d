"""Turning events into records: tool-call rows and the target/before/after of activity."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

from libs.common.events import (
    SERVER_UPDATED,
    SETTINGS_UPDATED,
    TOOL_CALLED,
    TOOL_CHANGE_EVENTS,
    Event,
    ToolChanged,
)
from libs.common.redaction import POLICIES, redact

TARGET_KEYS = ("server", "name", "slug", "key", "email", "tool", "id", "user_id", "org_id")
ARGUMENTS_SETTING = "audit_arguments"


def call_row(event: Event, policy: str, at: datetime) -> dict[str, Any]:
    """A tools_calls row from a `gateway.tool.called` event, arguments redacted per `policy`."""
    call = TOOL_CALLED.decode(event)
    return {
        "id": event.id,
        "time": at,
        "server": call.server,
        "tool": call.tool,
        "status": call.status or "ok",
        "principal_kind": call.principal_kind,
        "principal_id": call.principal_id or event.actor,
        "principal_name": call.principal_name,
        "credential_id": call.credential_id,
        "org": call.org or event.org,  # the server's org (docs/TENANCY.md)
        "caller_org": call.caller_org,
        "team": call.team,
        "endpoint": call.endpoint,
        "method": call.method,
        "error_code": call.error_code,
        "error_message": call.error_message,
        "latency_ms": call.latency_ms,
        "upstream_ms": call.upstream_ms,
        "request_bytes": call.request_bytes,
        "response_bytes": call.response_bytes,
        "arguments": redact(call.arguments, policy),
        "session_id": call.session_id,
        "client": call.client,
        "trace_id": event.trace_id,
        "tool_fingerprint": call.tool_fingerprint,
    }


def activity_fields(event: Event) -> dict[str, Any]:
    """The target, before and after an activity record shows (when the event carries them).

    Generic on purpose: the activity log keeps events of every type, so it reads the envelope's
    data as it came, whatever its payload type."""
    d = event.data
    target = next((str(d[k]) for k in TARGET_KEYS if d.get(k) not in (None, "")), None)
    return {"target": target, "before": d.get("before"), "after": d.get("after")}


def tool_facts(event: Event) -> list[Event]:
    """The per-tool facts a `server.updated` change summary stands for, as tool events.

    They are the tool events they stand for (`registry.tool.discovered`...), each with an id
    derived from the summary's (stored once however often the summary is delivered). Other
    events stand for none."""
    if event.type != SERVER_UPDATED.name or not event.data.get("tool_changes"):
        return []
    summary = SERVER_UPDATED.decode(event)
    facts = []
    for item in summary.tool_changes or ():
        kind = TOOL_CHANGE_EVENTS.get(item.get("change"))
        if kind is None or not isinstance(item.get("tool"), str):
            continue
        payload = ToolChanged(
            summary.server,
            item["tool"],
            summary.version,
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
    """The new `audit_arguments` policy when the event is a setting of it, else None."""
    if event.type != SETTINGS_UPDATED.name:
        return None
    setting = SETTINGS_UPDATED.decode(event)
    if setting.key != ARGUMENTS_SETTING:
        return None
    return setting.value if setting.value in POLICIES else None


def tool_call_live(event: Event, policy: str) -> dict[str, Any]:
    """What /ws/events shows of a tool call: the event, its arguments redacted per `policy`.

    The policy is the store's: the live stream never shows more than the record keeps."""
    call = TOOL_CALLED.decode(event)
    return {k: v for k, v in vars(call).items() if k != "arguments"} | {
        "arguments": redact(call.arguments, policy),
        "id": event.id,
        "time": event.time,
    }
