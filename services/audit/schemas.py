"""Response shapes of audit records, and the export encodings."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CALL_CSV = (
    "id", "time", "server", "tool", "status", "principal_kind", "principal_id", "principal_name",
    "credential_id", "org", "team", "endpoint", "method", "error_code", "error_message",
    "latency_ms", "upstream_ms", "request_bytes", "response_bytes", "session_id", "client",
    "trace_id", "tool_fingerprint",
)  # fmt: skip
ACTIVITY_CSV = ("id", "time", "action", "source", "actor", "org", "target", "trace_id")


def iso(value: Any) -> Any:
    """Datetimes as RFC 3339 UTC text; anything else unchanged."""
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return value


def record_out(row: Mapping[str, Any]) -> dict[str, Any]:
    """A database row as JSON-ready dict (ids as text, times RFC 3339)."""
    out = {k: iso(v) for k, v in dict(row).items()}
    if "id" in out:
        out["id"] = str(out["id"])
    return out


def call_out(row: Mapping[str, Any]) -> dict[str, Any]:
    """A tool-call record (with the seeds' server_name/tool_name aliases)."""
    out = record_out(row)
    out["server_name"] = out["server"]
    out["tool_name"] = out["tool"]
    return out


def activity_out(row: Mapping[str, Any]) -> dict[str, Any]:
    """An activity record."""
    return record_out(row)


def csv_line(values: Sequence[Any]) -> bytes:
    """One CSV line."""
    buf = io.StringIO()
    csv.writer(buf).writerow(["" if v is None else iso(v) for v in values])
    return buf.getvalue().encode()


def ndjson_line(doc: Mapping[str, Any]) -> bytes:
    """One NDJSON line."""
    return orjson.dumps(doc) + b"\n"


def round_or_none(value: Any, digits: int = 3) -> float | None:
    """A float rounded, or None."""
    return None if value is None else round(float(value), digits)


def agg_out(row: Mapping[str, Any]) -> dict[str, Any]:
    """Counts, error rate and latencies of one aggregate row."""
    calls = int(row["calls"] or 0)
    errors = int(row["errors"] or 0)
    return {
        "calls": calls,
        "ok": int(row["ok"] or 0),
        "errors": errors,
        "denied": int(row["denied"] or 0),
        "error_rate": round(errors / calls, 6) if calls else 0.0,
        "avg_ms": round_or_none(row["avg_ms"]),
        "p50_ms": round_or_none(row["p50_ms"]),
        "p95_ms": round_or_none(row["p95_ms"]),
        "p99_ms": round_or_none(row["p99_ms"]),
    }


ALERT_KINDS = ("error_rate", "latency_p95", "server_unhealthy")


def _webhook(url: str | None) -> str | None:
    """An http(s) URL with a host, or None."""
    if url in (None, ""):
        return None
    assert url is not None
    scheme, _, rest = url.partition("://")
    if scheme not in ("http", "https") or not rest or rest.startswith("/"):
        raise ValueError("must be an http or https URL")
    return url


class RuleFields(BaseModel):
    """The changeable fields of an alert rule (threshold: error rate 0..1, or ms)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    server: str | None = Field(default=None, min_length=1, max_length=200)
    threshold: float = Field(default=0.0, ge=0)
    window_minutes: int = Field(default=5, ge=1, le=1440)
    webhook_url: str | None = Field(default=None, max_length=2000)
    enabled: bool = True

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook(cls, value: str | None) -> str | None:
        return _webhook(value)


class RuleIn(RuleFields):
    """POST /api/v1/alerts/rules."""

    kind: str
    org: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in ALERT_KINDS:
            raise ValueError(f"must be one of {', '.join(ALERT_KINDS)}")
        return value

    @model_validator(mode="after")
    def _fits_kind(self) -> RuleIn:
        check_rule(self.kind, self.server, self.threshold)
        return self


class RulePatch(BaseModel):
    """PATCH /api/v1/alerts/rules/{id}: any of the fields (kind and org are fixed)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    server: str | None = Field(default=None, min_length=1, max_length=200)
    threshold: float | None = Field(default=None, ge=0)
    window_minutes: int | None = Field(default=None, ge=1, le=1440)
    webhook_url: str | None = Field(default=None, max_length=2000)
    enabled: bool | None = None

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook(cls, value: str | None) -> str | None:
        return _webhook(value)


def check_rule(kind: str, server: str | None, threshold: float) -> None:
    """A rule's fields make sense for its kind (ValueError naming the problem)."""
    if kind == "server_unhealthy" and not server:
        raise ValueError("server is required for server_unhealthy rules")
    if kind == "error_rate" and threshold > 1:
        raise ValueError("threshold of an error_rate rule is a fraction between 0 and 1")


def rule_out(row: Mapping[str, Any]) -> dict[str, Any]:
    """An alert rule (org_refs are internal)."""
    out = record_out(row)
    out.pop("org_refs", None)
    return out


def alert_out(row: Mapping[str, Any]) -> dict[str, Any]:
    """An alert (firing or resolved)."""
    out = record_out(row)
    out["rule_id"] = str(row["rule_id"]) if row["rule_id"] else None
    out["state"] = out["status"]
    return out
