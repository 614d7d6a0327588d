"""The event envelope and every event type with its payload, defined once.

Longer than 300 lines on purpose: it is the catalog of every fact the services publish, one
section per service, so a producer and its consumers read the same definitions in one place."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import orjson

from libs.common import wire
from libs.common.log import trace_id_var

P = TypeVar("P")


def new_id() -> str:
    """A random (version 4) UUID in its canonical text form, as `str(uuid.uuid4())` gives.

    Without building a `uuid.UUID` (a third of the cost): every tool call's event needs one."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
    id: str = field(default_factory=new_id)
    time: str = field(default_factory=now_iso)

    @property
    def subject(self) -> str:
        """`events.<service>.<entity>.<verb>` (without the namespace prefix)."""
        return f"events.{self.type}"

    def to_bytes(self) -> bytes:
        """JSON bytes of the envelope."""
        return orjson.dumps(self)  # orjson serialises dataclasses natively (no deep copy)

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


class PayloadError(ValueError):
    """An event's payload does not fit its type: the Bus drops the event as malformed."""


@dataclass(frozen=True)
class EventType(Generic[P]):
    """A named fact and the dataclass of its payload."""

    name: str
    payload: type[P]

    def decode(self, event: Event) -> P:
        """The payload of `event`, typed.

        Keys the payload lacks are ignored (a newer producer may send more); a missing required
        field or a wrong shape raises PayloadError."""
        if event.type != self.name:
            raise PayloadError(f"expected a {self.name} event, got {event.type}")
        try:
            return wire.decode(self.payload, event.data)
        except wire.WireError as exc:
            raise PayloadError(f"{self.name} payload: {exc}") from None

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
    # host CPU/memory (libs/common/hoststats.py) and what the service adds (the registry: counts)
    stats: dict[str, Any] | None = None


@dataclass(frozen=True)
class ServiceStopping:
    """A replica is shutting down cleanly."""

    service: str
    instance: str


def service_event(service: str, verb: str, payload_type: type[P]) -> EventType[P]:
    """`<service>.service.<verb>` for the platform events every service sends."""
    return EventType(f"{service}.service.{verb}", payload_type)


SERVICE_PAYLOADS: dict[str, type[Any]] = {
    "started": ServiceStarted,
    "heartbeat": ServiceHeartbeat,
    "stopping": ServiceStopping,
}


def platform_event(name: str) -> EventType[Any] | None:
    """The platform event type named `name` (`<service>.service.<verb>`), else None."""
    service, sep, verb = name.rpartition(".service.")
    payload = SERVICE_PAYLOADS.get(verb) if sep and service and "." not in service else None
    return service_event(service, verb, payload) if payload is not None else None


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
    org: str | None = None  # the server's org (the caller's for a platform-owned server)
    team: str | None = None
    endpoint: str = "/mcp"  # /mcp, /mcp/{team}, /mcp/servers/{path}, admin call-tool
    method: str = "tools/call"
    error_code: int | None = None  # JSON-RPC error code when status != ok
    error_message: str | None = None
    latency_ms: float = 0.0  # total time in the gateway
    upstream_ms: float | None = None  # time spent waiting on the upstream
    request_bytes: int = 0
    response_bytes: int = 0
    # redacted by the gateway under the platform's `audit_arguments` policy (libs/common/redaction)
    arguments: dict[str, Any] | None = None
    session_id: str | None = None
    client: str | None = None  # client name/version from clientInfo or _meta
    caller_org: str | None = None  # the caller's org (its first, for a user)
    # the registry's fingerprint of the tool definition that was called (sha256:...)
    tool_fingerprint: str | None = None


TOOL_CALLED = EventType("gateway.tool.called", ToolCalled)


# ---- auth -------------------------------------------------------------------------------
# Subjects events.auth.<entity>.<verb>; payloads never carry secrets or hashes.


@dataclass(frozen=True)
class UserChanged:
    """A user was created, updated, suspended, activated or deleted."""

    id: str
    username: str
    email: str | None
    display_name: str
    platform_role: str
    status: str


@dataclass(frozen=True)
class OrgChanged:
    """An organisation was created, updated, suspended, activated or deleted."""

    id: str
    slug: str
    name: str
    plan: str
    status: str


@dataclass(frozen=True)
class MembershipChanged:
    """A user's role in an org (team is None) or in a team changed."""

    org: str
    user: str | None
    role: str
    status: str = "active"
    team: str | None = None  # team name when this is a team membership
    email: str | None = None  # for pending invites


@dataclass(frozen=True)
class TeamChanged:
    """A team (group, area) was created, updated or deleted."""

    id: str
    name: str
    org: str
    parent: str | None = None
    description: str = ""


@dataclass(frozen=True)
class GrantChanged:
    """A team's permissions on a server were set or removed."""

    id: str
    team: str
    org: str
    server: str
    permissions: list[str]
    tools: list[str] | None = None
    server_id: str | None = None  # the server the grant is bound to (docs/TENANCY.md)


@dataclass(frozen=True)
class CredentialChanged:
    """An API key, service token or admin token was created or revoked (never the secret)."""

    id: str
    kind: str  # api_key | service_token | admin_token
    name: str
    prefix: str
    user: str | None = None
    org: str | None = None
    scopes: list[str] | None = None
    teams: list[str] | None = None
    expires_at: str | None = None


@dataclass(frozen=True)
class SessionChanged:
    """A sign-in session was revoked (logout, refresh reuse, password change)."""

    id: str
    user: str
    reason: str


@dataclass(frozen=True)
class SigningKeyChanged:
    """A JWT signing key was created or rotated; `kid` identifies it in the JWKS."""

    kid: str
    previous: str | None = None


@dataclass(frozen=True)
class LoginAttempted:
    """A sign-in succeeded, failed or was refused by throttling (audit keeps these)."""

    username: str
    source: str
    user: str | None = None
    reason: str | None = None  # bad_password | unknown_user | locked | mfa_required | ...


def auth_event(entity: str, verb: str, payload_type: type[P]) -> EventType[P]:
    """`auth.<entity>.<verb>`."""
    return EventType(f"auth.{entity}.{verb}", payload_type)


USER_CREATED = auth_event("user", "created", UserChanged)
USER_UPDATED = auth_event("user", "updated", UserChanged)
USER_SUSPENDED = auth_event("user", "suspended", UserChanged)
USER_ACTIVATED = auth_event("user", "activated", UserChanged)
USER_DELETED = auth_event("user", "deleted", UserChanged)
ORG_CREATED = auth_event("org", "created", OrgChanged)
ORG_UPDATED = auth_event("org", "updated", OrgChanged)
ORG_SUSPENDED = auth_event("org", "suspended", OrgChanged)
ORG_ACTIVATED = auth_event("org", "activated", OrgChanged)
ORG_DELETED = auth_event("org", "deleted", OrgChanged)
MEMBERSHIP_CREATED = auth_event("membership", "created", MembershipChanged)
MEMBERSHIP_UPDATED = auth_event("membership", "updated", MembershipChanged)
MEMBERSHIP_DELETED = auth_event("membership", "deleted", MembershipChanged)
TEAM_CREATED = auth_event("team", "created", TeamChanged)
TEAM_UPDATED = auth_event("team", "updated", TeamChanged)
TEAM_DELETED = auth_event("team", "deleted", TeamChanged)
GRANT_UPDATED = auth_event("grant", "updated", GrantChanged)
GRANT_DELETED = auth_event("grant", "deleted", GrantChanged)
KEY_CREATED = auth_event("key", "created", CredentialChanged)
KEY_REVOKED = auth_event("key", "revoked", CredentialChanged)
TOKEN_CREATED = auth_event("token", "created", CredentialChanged)
TOKEN_REVOKED = auth_event("token", "revoked", CredentialChanged)
SESSION_REVOKED = auth_event("session", "revoked", SessionChanged)
SIGNING_KEY_CREATED = auth_event("signing_key", "created", SigningKeyChanged)
SIGNING_KEY_ROTATED = auth_event("signing_key", "rotated", SigningKeyChanged)
LOGIN_SUCCEEDED = auth_event("login", "succeeded", LoginAttempted)
LOGIN_FAILED = auth_event("login", "failed", LoginAttempted)
LOGIN_LOCKED = auth_event("login", "locked", LoginAttempted)


# ---- registry ---------------------------------------------------------------------------
# every registry event carries `server` (its name) or `key` (a setting), and `version`, the
# registry's change counter, which a follower compares with its snapshot's version.


@dataclass(frozen=True)
class ServerChanged:
    """A server was created, updated (fields or its tool listing) or deleted."""

    server: str
    server_id: str
    version: int
    changed: list[str] = field(default_factory=list)  # field names, or ["tools"] after a refresh
    # after a refresh or import that changed tools (one event for them all): how many tools each
    # change touched ({"discovered": 1000}), and per tool {"tool", "change" (a TOOL_CHANGE_EVENTS
    # key), "state", "routable", "fingerprint", "flags"}, which audit keeps as the tool's activity
    tools: dict[str, int] | None = None
    tool_changes: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ServerToggled:
    """A server was enabled or disabled."""

    server: str
    server_id: str
    version: int
    enabled: bool


@dataclass(frozen=True)
class ServerStatusChanged:
    """A health check or refresh changed a server's status."""

    server: str
    server_id: str
    version: int
    status: str  # healthy | unhealthy | unknown
    previous: str
    error: str | None = None
    latency_ms: float | None = None
    tool_count: int = 0
    checked_at: str | None = None


@dataclass(frozen=True)
class ServerShared:
    """A platform admin shared a server with an org, or stopped (docs/TENANCY.md)."""

    server: str
    server_id: str
    version: int
    org: str  # the org the share was given to or taken from
    shared_with: list[str] = field(default_factory=list)  # every org it is shared with now


@dataclass(frozen=True)
class ToolChanged:
    """A tool was discovered, changed, quarantined, approved, enabled/disabled or removed."""

    server: str
    tool: str
    version: int
    state: str  # approved | quarantined | removed
    routable: bool
    fingerprint: str | None = None
    flags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SettingsUpdated:
    """An admin setting changed; `value` is None for secret settings."""

    key: str
    version: int
    value: Any = None
    secret: bool = False


def registry_event(entity: str, verb: str, payload_type: type[P]) -> EventType[P]:
    """`registry.<entity>.<verb>`."""
    return EventType(f"registry.{entity}.{verb}", payload_type)


SERVER_CREATED = registry_event("server", "created", ServerChanged)
SERVER_UPDATED = registry_event("server", "updated", ServerChanged)
SERVER_DELETED = registry_event("server", "deleted", ServerChanged)
SERVER_TOGGLED = registry_event("server", "toggled", ServerToggled)
SERVER_STATUS = registry_event("server", "status", ServerStatusChanged)
SERVER_SHARED = registry_event("server", "shared", ServerShared)
SERVER_UNSHARED = registry_event("server", "unshared", ServerShared)
TOOL_DISCOVERED = registry_event("tool", "discovered", ToolChanged)
TOOL_CHANGED = registry_event("tool", "changed", ToolChanged)  # a quarantined tool changed again
TOOL_QUARANTINED = registry_event("tool", "quarantined", ToolChanged)
TOOL_APPROVED = registry_event("tool", "approved", ToolChanged)
TOOL_ENABLED = registry_event("tool", "enabled", ToolChanged)
TOOL_DISABLED = registry_event("tool", "disabled", ToolChanged)
TOOL_REMOVED = registry_event("tool", "removed", ToolChanged)
# the tool fact each change of a server.updated summary stands for (ServerChanged.tool_changes)
TOOL_CHANGE_EVENTS: dict[str, EventType[ToolChanged]] = {
    "discovered": TOOL_DISCOVERED,
    "quarantined": TOOL_QUARANTINED,
    "changed": TOOL_CHANGED,
    "restored": TOOL_APPROVED,
    "removed": TOOL_REMOVED,
}
SETTINGS_UPDATED = registry_event("settings", "updated", SettingsUpdated)


@dataclass(frozen=True)
class McpChanged:
    """A catalog entry (MCP) was created, updated or deleted."""

    mcp_id: str
    name: str
    visibility: str  # public | private
    changed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VersionChanged:
    """A catalog version was added, or its scan state changed (status PENDING … CERTIFIED)."""

    mcp_id: str
    version_id: str
    visible_version: str
    status: str
    snapshot_id: str | None = None
    global_score: int | None = None
    grade: str | None = None


@dataclass(frozen=True)
class ScanRequested:
    """Scan one version's source (the `registry-scans` work queue; docs/CATALOG.md)."""

    version_id: str
    reason: str = "created"  # created | rescan | webhook


@dataclass(frozen=True)
class PolicyChanged:
    """An org policy, or an org's approval of a version, changed: gateways re-evaluate the org."""

    policy_id: str | None
    name: str
    version: int


MCP_CREATED = registry_event("mcp", "created", McpChanged)
MCP_UPDATED = registry_event("mcp", "updated", McpChanged)
MCP_DELETED = registry_event("mcp", "deleted", McpChanged)
VERSION_CREATED = registry_event("version", "created", VersionChanged)
VERSION_SCANNED = registry_event("version", "scanned", VersionChanged)
SCAN_REQUESTED = registry_event("scan", "requested", ScanRequested)
POLICY_CREATED = registry_event("policy", "created", PolicyChanged)
POLICY_UPDATED = registry_event("policy", "updated", PolicyChanged)
POLICY_DELETED = registry_event("policy", "deleted", PolicyChanged)
# every registry.server.* type: each payload carries `server`, `server_id` and `version`
TOOL_EVENTS = frozenset(
    t.name
    for t in (TOOL_DISCOVERED, TOOL_CHANGED, TOOL_QUARANTINED, TOOL_APPROVED, TOOL_ENABLED,
              TOOL_DISABLED, TOOL_REMOVED)
)  # fmt: skip
SERVER_EVENTS = frozenset(
    t.name
    for t in (SERVER_CREATED, SERVER_UPDATED, SERVER_DELETED, SERVER_TOGGLED, SERVER_STATUS,
              SERVER_SHARED, SERVER_UNSHARED)
)  # fmt: skip


# ---- sandbox ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessStatus:
    """A hosted process (stdio server) changed state on a sandbox replica."""

    server: str
    key: str  # server, or server@tenant for per-user servers
    state: str  # starting | running | stopping | stopped | crashed | backoff | failed
    previous: str | None = None
    reason: str | None = None
    pid: int | None = None
    restarts: int = 0
    exit_code: int | None = None
    backoff_s: float | None = None
    isolation: str | None = None
    instance: str | None = None


@dataclass(frozen=True)
class ApprovalChanged:
    """An approval (tool, module or network host) was requested or decided."""

    id: str
    kind: str  # tool | module | network
    subject: str  # tool name, module name, or host
    status: str  # pending | approved | rejected | revoked
    action: str  # request | approve | reject | revoke
    server: str | None = None
    version: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CodeToolChanged:
    """A code tool was created, updated, approved, revoked or deleted (registry refreshes)."""

    id: str
    name: str
    version: int
    status: str
    approved_version: int | None = None
    server: str = "code"


@dataclass(frozen=True)
class ExecutionFinished:
    """One sandboxed run of code ended; `outcome` says how (ok, error, killed, timeout)."""

    kind: str  # test | call
    tool: str | None
    outcome: str
    exit_code: int | None = None
    signal: int | None = None
    limit: str | None = None  # memory | cpu | timeout | processes | file_size when one was hit
    error_type: str | None = None
    duration_ms: float | None = None
    memory_kb: int | None = None
    isolation: str | None = None


@dataclass(frozen=True)
class EgressRefused:
    """The egress proxy refused a sandboxed process's connection."""

    server: str
    host: str
    port: int
    reason: str


@dataclass(frozen=True)
class TerminalSession:
    """An admin opened or closed a sandboxed terminal (/ws/terminal)."""

    session: str
    user: str
    isolation: str
    duration_s: float | None = None
    input_bytes: int | None = None
    exit_code: int | None = None


PROCESS_STATUS = EventType("sandbox.process.status", ProcessStatus)
APPROVAL_REQUESTED = EventType("sandbox.approval.requested", ApprovalChanged)
APPROVAL_DECIDED = EventType("sandbox.approval.decided", ApprovalChanged)
CODE_TOOL_CREATED = EventType("sandbox.code_tool.created", CodeToolChanged)
CODE_TOOL_UPDATED = EventType("sandbox.code_tool.updated", CodeToolChanged)
CODE_TOOL_DELETED = EventType("sandbox.code_tool.deleted", CodeToolChanged)
EXECUTION_FINISHED = EventType("sandbox.execution.finished", ExecutionFinished)
EGRESS_REFUSED = EventType("sandbox.egress.refused", EgressRefused)
TERMINAL_OPENED = EventType("sandbox.terminal.opened", TerminalSession)
TERMINAL_CLOSED = EventType("sandbox.terminal.closed", TerminalSession)


# ---- audit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertChanged:
    """An alert rule's condition started (fired) or stopped (resolved) holding."""

    alert_id: str
    rule_id: str
    rule: str
    kind: str  # error_rate | latency_p95 | server_unhealthy
    status: str  # firing | resolved
    message: str
    fired_at: str
    server: str | None = None
    org: str | None = None
    value: float | None = None
    threshold: float | None = None
    window_minutes: int | None = None
    resolved_at: str | None = None


ALERT_FIRED = EventType("audit.alert.fired", AlertChanged)
ALERT_RESOLVED = EventType("audit.alert.resolved", AlertChanged)
ALERT_EVENTS = frozenset({ALERT_FIRED.name, ALERT_RESOLVED.name})


@dataclass(frozen=True)
class ReportChanged:
    """A certification report of a snapshot was rendered (COMPLETED) or could not be (FAILED)."""

    report_id: str
    snapshot_id: str
    format: str
    status: str


REPORT_COMPLETED = registry_event("report", "completed", ReportChanged)
REPORT_FAILED = registry_event("report", "failed", ReportChanged)


# ---- every type above, by name --------------------------------------------------------

_TYPES: dict[str, EventType[Any]] = {
    value.name: value for value in list(globals().values()) if isinstance(value, EventType)
}


def type_of(name: str) -> EventType[Any] | None:
    """The event type named `name`, when it is one of the types defined here.

    These are the platform events of every service: `platform_event`."""
    return _TYPES.get(name)


def decode(event: Event) -> Any:
    """The typed payload of any event type defined here.

    PayloadError for another type or a payload unlike its type."""
    kind = _TYPES.get(event.type)
    if kind is None:
        raise PayloadError(f"{event.type} is not a known event type")
    return kind.decode(event)
