"""What each service may publish and subscribe on NATS, as the permissions of its own user.

One entry per service names what its code does (docs/CONTRACTS.md lists the same, per service);
`permissions()` turns an entry into the `permissions` block of that service's nats-server user,
under the namespace prefix. A subject missing here is refused by the server: the service logs
"Permissions Violation" and the request times out, so a new subject is added here with its use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libs.common import rpc, subjects

SERVICES = ("auth", "registry", "gateway", "sandbox", "audit")
STREAM = "EVENTS"
JS_API = "$JS.API"
# how long a served request may take to be answered (allow_responses): a sandbox call's
# timeout is at most 600 s; nats-server's default (2 min) would drop the slowest replies
RESPONSE_WINDOW = "15m"


@dataclass(frozen=True)
class Access:
    """What one service does on NATS; subjects without the namespace prefix."""

    serves: tuple[str, ...] = ()  # request/reply subjects it answers (queue group = service)
    calls: tuple[str, ...] = ()  # request/reply subjects it asks
    follows: tuple[str, ...] = ()  # stream subjects it receives live (core NATS, no replay)
    consumes: tuple[tuple[str, str], ...] = ()  # (durable, filter): pull consumers on EVENTS
    publishes_live: tuple[str, ...] = ()  # unstored core subjects it sends
    follows_live: tuple[str, ...] = ()  # unstored core subjects it receives
    buckets: tuple[str, ...] = ()  # KV buckets it creates, reads, writes and watches
    # reads the info of every platform stream and durable for its JetStream figures (/metrics)
    reads_figures: bool = False


# what every service does through libs/common: the Verifier asks auth and follows its events
COMMON = Access(calls=(rpc.AUTH_INTROSPECT, rpc.AUTH_JWKS), follows=(subjects.AUTH_EVENTS,))

ACCESS: dict[str, Access] = {
    # auth resolves a grant's server within the org (tenancy: rpc.registry.resolve)
    "auth": Access(serves=(rpc.served_by("auth"),), calls=(rpc.REGISTRY_RESOLVE,)),
    "registry": Access(
        serves=(rpc.served_by("registry"),),
        # rpc.auth.org: an org by id or slug (tenancy); rpc.auth.set_plan: Stripe webhooks
        calls=(
            rpc.SANDBOX_DISCOVER,
            rpc.AUTH_ORG,
            rpc.AUTH_SET_PLAN,
            rpc.SANDBOX_SCAN,  # scan a catalog version's source (docs/CATALOG.md)
            # export/import carry code tools (MCPBox)
            rpc.SANDBOX_CODE_TOOLS_EXPORT,
            rpc.SANDBOX_CODE_TOOLS_IMPORT,
        ),
        consumes=(
            ("registry-code-tools", subjects.CODE_TOOL_EVENTS),
            ("registry-scans", subjects.SCAN_REQUESTS),  # the scan work queue
        ),
        # the public catalog's anonymous limit (services/registry/catalog/rate.py)
        buckets=("registry_catalog_ratelimit",),
    ),
    "gateway": Access(
        calls=(rpc.REGISTRY_SNAPSHOT, rpc.SANDBOX_CALL, rpc.REGISTRY_POLICIES),
        follows=(subjects.REGISTRY_EVENTS,),
        publishes_live=(subjects.GATEWAY_LIVE,),
        follows_live=(subjects.GATEWAY_LIVE,),
        buckets=("gateway", "gateway_ratelimit", "gateway_tasks"),
    ),
    "sandbox": Access(
        serves=(rpc.served_by("sandbox"),),
        calls=(
            rpc.REGISTRY_HOSTED,
            f"{rpc.SANDBOX_REPLICA}.>",
            rpc.REGISTRY_SOURCE,  # a catalog version's tarball, in chunks, for the scanner
        ),
        follows=(subjects.REGISTRY_SERVER_EVENTS,),
        publishes_live=(subjects.SANDBOX_LOGS,),
        follows_live=(subjects.SANDBOX_LOGS,),
    ),
    "audit": Access(
        follows=(subjects.ALL_EVENTS,),
        consumes=(("audit-store", subjects.ALL_EVENTS),),
        follows_live=(subjects.SANDBOX_LOGS, subjects.SERVICE_LOGS),
        reads_figures=True,  # services/audit/platform_metrics.py
    ),
}


def access_of(service: str) -> Access:
    """The service's entry joined with what every service does."""
    own = ACCESS[service]
    return Access(
        serves=own.serves,
        calls=COMMON.calls + own.calls,
        follows=COMMON.follows + own.follows,
        consumes=own.consumes,
        publishes_live=own.publishes_live,
        follows_live=own.follows_live,
        buckets=own.buckets,
        reads_figures=own.reads_figures,
    )


def platform_streams(namespace: str = "") -> tuple[str, ...]:
    """Every stream the services create: EVENTS and each KV bucket's, under the namespace."""
    buckets = sorted({b for access in ACCESS.values() for b in access.buckets})
    kv = (f"KV_{prefixed(namespace, b, '_')}" for b in buckets)
    return (prefixed(namespace, STREAM, "_"), *kv)


def platform_durables() -> tuple[str, ...]:
    """Every durable consumer the services run on EVENTS."""
    return tuple(sorted({d for access in ACCESS.values() for d, _ in access.consumes}))


def prefixed(namespace: str, name: str, sep: str = ".") -> str:
    """A subject (or, with sep="_", a stream or bucket name) under the namespace."""
    return f"{namespace}{sep}{name}" if namespace else name


def inbox_prefix(service: str, namespace: str = "") -> str:
    """The reply inbox of a service's connection: only its own user may read it."""
    return prefixed("_INBOX", prefixed(namespace, service))


def permissions(service: str, namespace: str = "") -> dict[str, Any]:
    """The nats-server `permissions` of the service's user."""
    access = access_of(service)
    ns = namespace
    stream = prefixed(ns, STREAM, "_")
    publish = [prefixed(ns, s) for s in access.calls + access.publishes_live]
    publish += [prefixed(ns, subjects.events_of(service))]  # its own events, into the stream
    publish += [prefixed(ns, subjects.service_logs(service))]  # its own log lines, live
    publish += [f"{JS_API}.STREAM.INFO.{stream}", f"{JS_API}.STREAM.CREATE.{stream}"]
    # raising its replicas or byte limit to the settings (libs/common/bus.py)
    publish += [f"{JS_API}.STREAM.UPDATE.{stream}"]
    subscribe = [prefixed(ns, s) for s in access.serves + access.follows + access.follows_live]
    subscribe += [inbox_prefix(service, ns) + ".>"]
    for durable, filter_subject in access.consumes:
        consumer = f"{stream}.{durable}"
        publish += [
            f"{JS_API}.CONSUMER.INFO.{consumer}",
            # the filter is part of the subject, so the user cannot widen what it reads
            f"{JS_API}.CONSUMER.CREATE.{consumer}.{prefixed(ns, filter_subject)}",
            f"{JS_API}.CONSUMER.DELETE.{consumer}",
            f"{JS_API}.CONSUMER.MSG.NEXT.{consumer}",
            f"$JS.ACK.{consumer}.>",
        ]
    for name in access.buckets:
        bucket = prefixed(ns, name, "_")
        kv = f"KV_{bucket}"
        publish += [
            f"$KV.{bucket}.>",
            f"{JS_API}.STREAM.INFO.{kv}",
            f"{JS_API}.STREAM.CREATE.{kv}",
            f"{JS_API}.STREAM.UPDATE.{kv}",
            f"{JS_API}.STREAM.MSG.GET.{kv}",
            f"{JS_API}.DIRECT.GET.{kv}.>",
            f"{JS_API}.CONSUMER.CREATE.{kv}",
            f"{JS_API}.CONSUMER.CREATE.{kv}.>",
            f"{JS_API}.CONSUMER.INFO.{kv}.>",
            f"{JS_API}.CONSUMER.DELETE.{kv}.>",
            f"$JS.FC.{kv}.>",
        ]
    if access.reads_figures:
        publish += [f"{JS_API}.STREAM.INFO.{name}" for name in platform_streams(ns)[1:]]
        known = {f"{stream}.{durable}" for durable, _ in access.consumes}
        consumers = [f"{stream}.{durable}" for durable in platform_durables()]
        publish += [f"{JS_API}.CONSUMER.INFO.{c}" for c in consumers if c not in known]
    return {
        "publish": {"allow": publish},
        "subscribe": {"allow": subscribe},
        "allow_responses": {"max": 1, "expires": RESPONSE_WINDOW},
    }
