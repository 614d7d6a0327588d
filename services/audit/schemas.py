"""Response shapes of audit records, and the export encodings."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

CALL_CSV = (
    "id", "time", "server", "tool", "status", "principal_kind", "principal_id", "principal_name",
    "credential_id", "org", "team", "endpoint", "method", "error_code", "error_message",
    "latency_ms", "upstream_ms", "request_bytes", "response_bytes", "session_id", "client",
    "trace_id",
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
