"""The event envelope and every event type with its payload, defined once."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson

from libs.common.log import trace_id_var

P = TypeVar("P")


def now_iso() -> str:
    """The current UTC time in RFC 3339."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Event:
    """The envelope: `id` is also the Nats-Msg-Id, so JetStream drops duplicates."""

    type: str
    source: str
    data: dict[str, Any]
    actor: str | None = None
    org: str | None = None
    trace_id: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: str = field(default_factory=now_iso)

    @property
    def subject(self) -> str:
        """`events.<service>.<entity>.<verb>` (without the namespace prefix)."""
        return f"events.{self.type}"

    def to_bytes(self) -> bytes:
        """JSON bytes of the envelope."""
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Event:
        """Parse an envelope; raises ValueError when it is not one."""
        try:
            doc = orjson.loads(raw)
            return cls(
                type=doc["type"],
                source=doc["source"],
                data=doc.get("data") or {},
                actor=doc.get("actor"),
                org=doc.get("org"),
                trace_id=doc.get("trace_id"),
                id=doc["id"],
                time=doc["time"],
            )
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"not an event envelope: {exc}") from None


@dataclass(frozen=True)
class EventType(Generic[P]):
    """A named fact and the dataclass of its payload."""

    name: str
    payload: type[P]

    def event(
        self, payload: P, *, source: str, actor: str | None = None, org: str | None = None
    ) -> Event:
        """Wrap a payload in a new envelope carrying the current trace id."""
        data = dataclasses.asdict(payload) if dataclasses.is_dataclass(payload) else dict(payload)
        return Event(
            type=self.name,
            source=source,
            data=data,
            actor=actor,
            org=org,
            trace_id=trace_id_var.get() or None,
        )


# ---- platform ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceStarted:
    """A service replica finished starting."""

    service: str
    instance: str
    version: str
    started_at: str


@dataclass(frozen=True)
class ServiceHeartbeat:
    """A replica is alive; audit marks it down after three missed intervals."""

    service: str
    instance: str
    version: str
    started_at: str
    uptime_s: float
    interval_s: float


@dataclass(frozen=True)
class ServiceStopping:
    """A replica is shutting down cleanly."""

    service: str
    instance: str


def service_event(service: str, verb: str, payload_type: type[P]) -> EventType[P]:
    """`<service>.service.<verb>` for the platform events every service sends."""
    return EventType(f"{service}.service.{verb}", payload_type)


# ---- gateway ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCalled:
    """One tools/call through the gateway (or a refusal of one); audit stores it as a record."""

    server: str
    tool: str
    status: str  # ok | error | denied
    principal_kind: str | None = None
    principal_id: str | None = None
    principal_name: str | None = None
    credential_id: str | None = None  # API key / service token id
    org: str | None = None
    team: str | None = None
    endpoint: str = "/mcp"  # /mcp, /mcp/{team}, /mcp/servers/{path}, admin call-tool
    method: str = "tools/call"
    error_code: int | None = None  # JSON-RPC error code when status != ok
    error_message: str | None = None
    latency_ms: float = 0.0  # total time in the gateway
    upstream_ms: float | None = None  # time spent waiting on the upstream
    request_bytes: int = 0
    response_bytes: int = 0
    arguments: dict[str, Any] | None = None  # full; audit redacts per its policy before storing
    session_id: str | None = None
    client: str | None = None  # client name/version from clientInfo or _meta


TOOL_CALLED = EventType("gateway.tool.called", ToolCalled)
