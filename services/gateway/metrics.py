"""Gateway metrics, named after the OpenTelemetry MCP semantic conventions where they exist."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from prometheus_client import Counter, Gauge, Histogram

from services.gateway.upstreams.breaker import STATE_VALUES

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# Labels follow the OTel MCP semantic conventions (mcp.method.name, gen_ai.tool.name, error.type,
# mcp.protocol.version, network.transport), each from a fixed set: see the label functions below.
_OPERATION_LABELS = [
    "mcp_method_name",
    "gen_ai_tool_name",
    "error_type",
    "mcp_protocol_version",
    "network_transport",
]
# mcp.server.operation.duration: from a request's arrival to its answer
OPERATION_DURATION = Histogram(
    "mcp_server_operation_duration_seconds",
    "Duration of MCP requests handled by the gateway (mcp.server.operation.duration).",
    _OPERATION_LABELS,
    buckets=_BUCKETS,
)
TOOL_CALLS = Counter(
    "switchboard_gateway_tool_calls_total",
    "tools/call through the gateway by server (gen_ai.tool.name) and status.",
    ["server", "gen_ai_tool_name", "status"],
)
# mcp.client.operation.duration: every request the gateway sends an upstream, by server
UPSTREAM_DURATION = Histogram(
    "mcp_client_operation_duration_seconds",
    "Time spent waiting on upstream MCP servers (mcp.client.operation.duration).",
    ["server", *_OPERATION_LABELS],
    buckets=_BUCKETS,
)
# sessions last seconds to hours: the semconv's advice (10 ms .. 300 s) would put most in +Inf
SESSION_BUCKETS = (0.1, 1, 5, 15, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400)
SESSION_DURATION = Histogram(
    "mcp_server_session_duration_seconds",
    "Client sessions with the gateway, observed when they end (mcp.server.session.duration).",
    ["mcp_protocol_version", "network_transport", "error_type"],
    buckets=SESSION_BUCKETS,
)
UPSTREAM_SESSION_DURATION = Histogram(
    "mcp_client_session_duration_seconds",
    "Upstream sessions the gateway's pool held, observed when they end "
    "(mcp.client.session.duration).",
    ["server", "mcp_protocol_version", "network_transport", "error_type"],
    buckets=SESSION_BUCKETS,
)
GATEWAY_OVERHEAD = Histogram(
    "switchboard_gateway_added_duration_seconds",
    "Time the gateway added to a tools/call (total minus upstream).",
    ["mcp_method_name"],
    buckets=_BUCKETS,
)
AUDIT_PUBLISH = Histogram(
    "switchboard_gateway_audit_publish_seconds",
    "Time to publish a tools/call record and get JetStream's acknowledgement.",
    buckets=_BUCKETS,
)
OPEN_SESSIONS = Gauge(
    "switchboard_gateway_sessions_open", "Client sessions (legacy streams) open on this replica."
)
UPSTREAM_SESSIONS = Gauge(
    "switchboard_gateway_upstream_sessions", "Initialised upstream MCP sessions.", ["server"]
)
CIRCUIT_STATE = Gauge(
    "switchboard_gateway_circuit_state",
    "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
    ["server"],
)
ROUTING_TOOLS = Gauge("switchboard_gateway_routing_tools", "Tools in the routing table.")
HEAP_SETTLE = Histogram(
    "switchboard_gateway_heap_settle_seconds",
    "Full garbage collections run after routing-table changes, before freezing the heap.",
    buckets=_BUCKETS,
)
HEAP_FROZEN = Gauge(
    "switchboard_gateway_heap_frozen_objects",
    "Objects frozen out of the garbage collector's passes (gc.freeze) at the last settle.",
)


def set_circuit(server: str, state: str) -> None:
    """Record a breaker's state."""
    CIRCUIT_STATE.labels(server).set(STATE_VALUES.get(state, 0))


# Pre-bound label children: `.labels()` hashes and locks on every call; the hot path looks the
# child up in a plain dict instead. Every cache is keyed by the label values, never by what a
# caller sent, so junk from a caller cannot grow it.
CALL_OVERHEAD = GATEWAY_OVERHEAD.labels("tools/call")
_TOOL_CALLS: dict[tuple[str, str, str], Any] = {}
_OPERATIONS: dict[tuple[str, str, str, str, str], Any] = {}
_UPSTREAM: dict[tuple[str, str, str, str, str, str], Any] = {}

TCP = "tcp"  # network.transport: HTTP clients and upstreams, and the sandbox's NATS connection
OTHER = "other"  # a method, tool or protocol version outside the known set
OTHER_ERROR = "_OTHER"  # error.type's own fallback value
TOOL_ERROR = "tool_error"  # a tools/call result with isError: true
TIMEOUT = "timeout"
CANCELLED = "cancelled"
SESSION_LOST = "session_lost"  # an upstream session replaced after it expired or failed


def tool_calls(server: str, tool: str, status: str) -> Any:
    """The TOOL_CALLS child for these labels."""
    key = (server, tool, status)
    child = _TOOL_CALLS.get(key)
    if child is None:
        child = _TOOL_CALLS[key] = TOOL_CALLS.labels(server, tool, status)
    return child


_METHODS = frozenset(
    {
        "initialize", "ping", "server/discover", "tools/list", "tools/call", "resources/list",
        "resources/read", "resources/templates/list", "resources/subscribe",
        "resources/unsubscribe", "prompts/list", "prompts/get", "completion/complete",
        "logging/setLevel", "subscriptions/listen", "tasks/get", "tasks/list", "tasks/cancel",
        "tasks/result",
    }
)  # fmt: skip
PROTOCOL_VERSIONS = frozenset((*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS))
# JSON-RPC codes reported as error.type: the standard ones, MCP's and the gateway's own (an
# upstream's own codes are unbounded: they share `_OTHER`)
_ERROR_CODES = {
    code: str(code)
    for code in (
        -32700, -32600, -32601, -32602, -32603,  # JSON-RPC 2.0
        -32000, -32001, -32002, -32020, -32021, -32022, -32042, -32800,  # MCP
        -32003, -32004, -32010, -32011, -32012, -32013, -32014, -32015, -32029,  # the gateway's
    )
}  # fmt: skip
# exception classes reported by name (error.type); any other is `_OTHER`
_EXCEPTIONS = frozenset(
    {
        "TransportFailure", "SessionExpired", "HttpFailure", "TooLarge", "ConnectionError",
        "ConnectionResetError", "OSError", "ValueError", "KeyError", "TypeError", "RuntimeError",
    }
)  # fmt: skip


def method_label(method: str) -> str:
    """mcp.method.name: a known method, else `other`."""
    return method if method in _METHODS else OTHER


def protocol_label(version: str | None) -> str:
    """mcp.protocol.version: a known revision, `other` for any other, '' when none was given."""
    if not version:
        return ""
    return version if version in PROTOCOL_VERSIONS else OTHER


def error_type(code: Any) -> str:
    """error.type of a JSON-RPC error: its code as a string when known, else `_OTHER`."""
    return _ERROR_CODES.get(code, OTHER_ERROR) if type(code) is int else OTHER_ERROR


def exception_type(exc: BaseException) -> str:
    """error.type of an exception: a JSON-RPC fault's code, `timeout`, `cancelled`, a class name.

    The class name only from a fixed set (`_OTHER` otherwise)."""
    code = getattr(exc, "code", None)
    if type(code) is int and type(exc).__name__ == "RpcFault":
        return error_type(code)
    if isinstance(exc, TimeoutError):
        return TIMEOUT
    if isinstance(exc, asyncio.CancelledError):
        return CANCELLED
    name = type(exc).__name__
    return name if name in _EXCEPTIONS else OTHER_ERROR


def reply_error(method: str, reply: dict[str, Any]) -> str:
    """error.type of an upstream's reply: its error's code, `tool_error` for isError, else ''."""
    err = reply.get("error")
    if err is not None:
        return error_type(err.get("code") if isinstance(err, dict) else None)
    if method == "tools/call":
        result = reply.get("result")
        if isinstance(result, dict) and result.get("isError") is True:
            return TOOL_ERROR
    return ""


def operation(
    method: str, tool: str = "", error: str = "", protocol: str | None = "", transport: str = TCP
) -> Any:
    """The OPERATION_DURATION child of a request the gateway answered.

    `tool` (a routing-table name, or `other`) counts for tools/call only; `error` is a value of
    `error_type`, `exception_type` or TOOL_ERROR; method and protocol are mapped to their fixed
    sets here. One dict lookup when the child exists."""
    key = _operation_labels(method, tool, error, protocol, transport)
    child = _OPERATIONS.get(key)
    if child is None:
        child = _OPERATIONS[key] = OPERATION_DURATION.labels(*key)
    return child


def _operation_labels(
    method: str, tool: str, error: str, protocol: str | None, transport: str
) -> tuple[str, str, str, str, str]:
    """An operation's labels, each mapped to its fixed set (tool counts for tools/call only)."""
    method = method if method in _METHODS else OTHER
    return (
        method,
        (tool or OTHER) if method == "tools/call" else "",
        error,
        protocol if protocol in PROTOCOL_VERSIONS else protocol_label(protocol),
        transport,
    )


def upstream_duration(
    server: str,
    method: str,
    tool: str = "",
    error: str = "",
    protocol: str | None = "",
    transport: str = TCP,
) -> Any:
    """The UPSTREAM_DURATION child of a request sent to a registered server (`server`).

    `tool` is the upstream's name of a routed tool (or `other`) and counts for tools/call only."""
    key = (server, *_operation_labels(method, tool, error, protocol, transport))
    child = _UPSTREAM.get(key)
    if child is None:
        child = _UPSTREAM[key] = UPSTREAM_DURATION.labels(*key)
    return child


class UpstreamOperation:
    """Times one upstream request off the hot path (a session's handshake), as a context manager.

    An exception leaving the block is its error.type; `reply` notes a JSON-RPC error instead."""

    __slots__ = ("error", "method", "protocol", "server", "t0", "transport")

    def __init__(
        self, server: str, method: str, protocol: str | None, transport: str = TCP
    ) -> None:
        self.server, self.method, self.protocol, self.transport = (
            server,
            method,
            protocol,
            transport,
        )
        self.error = ""
        self.t0 = 0.0

    def __enter__(self) -> UpstreamOperation:
        self.t0 = time.perf_counter()
        return self

    def reply(self, reply: dict[str, Any]) -> dict[str, Any]:
        """Note the reply's error (if any); returns the reply."""
        self.error = reply_error(self.method, reply)
        return reply

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        error = exception_type(exc) if exc is not None else self.error
        upstream_duration(
            self.server, self.method, "", error, self.protocol, self.transport
        ).observe(time.perf_counter() - self.t0)


def session_ended(seconds: float, protocol: str | None, error: str = "") -> None:
    """A client's session with the gateway ended after `seconds` (mcp.server.session.duration)."""
    SESSION_DURATION.labels(protocol_label(protocol), TCP, error).observe(max(0.0, seconds))


def upstream_session_opened(server: str) -> float:
    """An upstream session is open: counted in the gauge; returns its start (monotonic)."""
    UPSTREAM_SESSIONS.labels(server).inc()
    return time.monotonic()


def upstream_session_ended(
    server: str, opened: float, protocol: str | None, error: str = "", transport: str = TCP
) -> None:
    """An upstream session opened at `opened` (monotonic) ended (mcp.client.session.duration)."""
    UPSTREAM_SESSIONS.labels(server).dec()
    UPSTREAM_SESSION_DURATION.labels(server, protocol_label(protocol), transport, error).observe(
        max(0.0, time.monotonic() - opened)
    )
