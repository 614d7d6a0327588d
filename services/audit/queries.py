"""Query parameters of the audit routes: time ranges and filters, validated (422 on bad input)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from starlette.requests import Request

from libs.common.errors import Unprocessable
from services.audit.store.activity import ActivityFilters
from services.audit.store.calls import CallFilters

RELATIVE_RE = re.compile(r"^(\d{1,6})([smhdw])$")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
STATUSES = ("ok", "error", "denied")
EXPORT_FORMATS = ("csv", "ndjson")


def parse_duration(raw: str) -> timedelta | None:
    """`15m`, `24h`, `7d` as a timedelta; None when it is not one."""
    match = RELATIVE_RE.match(raw.strip())
    if not match:
        return None
    return timedelta(seconds=int(match.group(1)) * UNIT_S[match.group(2)])


def parse_instant(raw: str, now: datetime) -> datetime | None:
    """RFC 3339 (naive is UTC) or a duration ago (`1h` = an hour before now); None when neither."""
    ago = parse_duration(raw)
    if ago is not None:
        return now - ago
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def time_range(
    request: Request, problems: dict[str, str]
) -> tuple[datetime | None, datetime | None]:
    """`since` and `until` (aliases `from`/`to`) of the query."""
    params = request.query_params
    now = datetime.now(UTC)
    out: list[datetime | None] = []
    for name, alias in (("since", "from"), ("until", "to")):
        raw = params.get(name) or params.get(alias)
        if not raw:
            out.append(None)
            continue
        value = parse_instant(raw, now)
        if value is None:
            problems[name] = "must be an RFC 3339 time or a duration like 15m, 24h, 7d"
        out.append(value)
    since, until = out
    if since and until and since >= until:
        problems["until"] = "must be after since"
    return since, until


def call_filters(request: Request, q: str | None) -> CallFilters:
    """The tool-call filters of a request."""
    params = request.query_params
    problems: dict[str, str] = {}
    since, until = time_range(request, problems)
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        problems["status"] = f"must be one of {', '.join(STATUSES)}"
    if problems:
        raise Unprocessable("Invalid query parameters.", details={"fields": problems})

    def pick(*names: str) -> str | None:
        return next((params[n] for n in names if params.get(n)), None)

    return CallFilters(
        server=pick("server", "server_name"),
        tool=pick("tool", "tool_name"),
        status=status,
        principal=pick("principal", "user", "principal_id"),
        org=pick("org"),
        team=pick("team"),
        since=since,
        until=until,
        q=q,
    )


def activity_filters(
    request: Request, q: str | None, org: tuple[str, ...] | None = None, actor: str | None = None
) -> ActivityFilters:
    """The activity filters of a request (MCP Hub's `actor_id` is an alias of `actor`)."""
    params = request.query_params
    problems: dict[str, str] = {}
    since, until = time_range(request, problems)
    if problems:
        raise Unprocessable("Invalid query parameters.", details={"fields": problems})
    if org is None and params.get("org"):
        org = (params["org"],)
    return ActivityFilters(
        action=params.get("action") or params.get("type") or None,
        actor=actor or params.get("actor") or params.get("actor_id") or None,
        org=org,
        source=params.get("source") or None,
        target=params.get("target") or None,
        since=since,
        until=until,
        q=q,
    )


def export_format(request: Request) -> str:
    """`format=csv|ndjson` (default ndjson)."""
    fmt = (request.query_params.get("format") or "ndjson").lower()
    if fmt not in EXPORT_FORMATS:
        raise Unprocessable(
            "Invalid export format.", details={"fields": {"format": "must be csv or ndjson"}}
        )
    return fmt


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within [low, high]."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise Unprocessable(
            "Invalid query parameters.",
            details={"fields": {name: f"must be an integer from {low} to {high}"}},
        )
    return value
