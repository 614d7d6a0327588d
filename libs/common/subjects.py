"""Event patterns and live subjects, defined once (RPC subjects: `libs/common/rpc.py`).

`events.<service>.<type>` are stored in JetStream (the outbox publishes them); services follow
or consume the patterns below. `live.*` subjects are core NATS only: replica-to-replica traffic
of the gateway (streams, cancels, replies, parked retries) and the sandbox's log lines, lost
when nobody listens. `bus.subject()` prefixes each with the namespace.
"""

# events (JetStream)
ALL_EVENTS = "events.>"
AUTH_EVENTS = "events.auth.>"
REGISTRY_EVENTS = "events.registry.>"
REGISTRY_SERVER_EVENTS = "events.registry.server.>"
CODE_TOOL_EVENTS = "events.sandbox.code_tool.>"
AUTH_ORG_EVENTS = "events.auth.org.>"  # the registry drops cached plans (within AUTH_EVENTS)
SCAN_REQUESTS = "events.registry.scan.requested"  # the registry-scans work queue

# live: the gateway's replicas
GATEWAY_LIVE = "live.gateway.>"
GATEWAY_SESSION_ENDED = "live.gateway.session.ended"  # a session closed on one replica
GATEWAY_SSE = "live.gateway.sse"  # a message for an SSE stream another replica holds
GATEWAY_CANCEL = "live.gateway.cancel"  # a cancel for a call another replica forwards
GATEWAY_REPLY = "live.gateway.reply"  # a client's answer to a request another replica made
GATEWAY_RESOURCE_UNSUBSCRIBE = "live.gateway.resource.unsubscribe"
GATEWAY_RETRY = "live.gateway.retry"  # a parked request's retry, to the replica holding it

# live: the sandbox's process logs (`live.sandbox.logs.<server token>`)
SANDBOX_LOGS = "live.sandbox.logs.>"


# live: every service's own WARNING+ log lines (`live.logs.<service>`), kept by audit
SERVICE_LOGS = "live.logs.>"


def service_logs(service: str) -> str:
    """The live subject of one service's own log lines."""
    return f"live.logs.{service}"


def events_of(service: str) -> str:
    """The pattern of one service's own events."""
    return f"events.{service}.>"


def sandbox_logs(token: str) -> str:
    """The live subject of one hosted server's log lines."""
    return f"live.sandbox.logs.{token}"
