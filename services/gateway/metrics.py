"""Gateway metrics, named after the OpenTelemetry MCP semantic conventions where they exist."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from services.gateway.upstreams.breaker import STATE_VALUES

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# mcp.server.operation.duration (OTel MCP semconv), by mcp.method.name and outcome
OPERATION_DURATION = Histogram(
    "mcp_server_operation_duration_seconds",
    "Duration of MCP requests handled by the gateway, by method (mcp.method.name) and status.",
    ["mcp_method_name", "status"],
    buckets=_BUCKETS,
)
TOOL_CALLS = Counter(
    "switchboard_gateway_tool_calls_total",
    "tools/call through the gateway by server (gen_ai.tool.name) and status.",
    ["server", "gen_ai_tool_name", "status"],
)
# mcp.client.operation.duration: the time the gateway waited on the upstream
UPSTREAM_DURATION = Histogram(
    "mcp_client_operation_duration_seconds",
    "Time spent waiting on upstream MCP servers, by server and method.",
    ["server", "mcp_method_name"],
    buckets=_BUCKETS,
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
# child up in a plain dict instead (bounded by servers × tools × statuses).
CALL_OVERHEAD = GATEWAY_OVERHEAD.labels("tools/call")
_TOOL_CALLS: dict[tuple[str, str, str], Any] = {}
_UPSTREAM: dict[tuple[str, str], Any] = {}


def tool_calls(server: str, tool: str, status: str) -> Any:
    """The TOOL_CALLS child for these labels."""
    key = (server, tool, status)
    child = _TOOL_CALLS.get(key)
    if child is None:
        child = _TOOL_CALLS[key] = TOOL_CALLS.labels(server, tool, status)
    return child


def upstream_duration(server: str, method: str) -> Any:
    """The UPSTREAM_DURATION child for these labels."""
    key = (server, method)
    child = _UPSTREAM.get(key)
    if child is None:
        child = _UPSTREAM[key] = UPSTREAM_DURATION.labels(server, method)
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
_OPERATIONS: dict[tuple[str, str], Any] = {}


def operation(method: str, status: str) -> Any:
    """The OPERATION_DURATION child (unknown methods share `other`: bounded cardinality).

    The cache is keyed by the label, not the method a caller sent: junk method names from
    unauthenticated callers must not grow it (one frozenset lookup, as before)."""
    key = (method if method in _METHODS else "other", status)
    child = _OPERATIONS.get(key)
    if child is None:
        child = _OPERATIONS[key] = OPERATION_DURATION.labels(*key)
    return child
