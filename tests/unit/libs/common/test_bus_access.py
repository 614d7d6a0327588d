"""The NATS permissions table matches what the services' code names, and grants nothing wider."""

from nats.js.api import ConsumerConfig

from libs.common import bus_access, rpc, subjects
from libs.common.bus_access import SERVICES, permissions
from services.audit import consumers as audit_consumers
from services.gateway import rate_limit
from services.gateway.clients import sessions
from services.gateway.features import task_records
from services.registry import consumers as registry_consumers


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` one token, `>` the rest."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


def publishes(service: str, subject: str, namespace: str = "") -> bool:
    """The service's user may publish subject."""
    return any(matches(p, subject) for p in permissions(service, namespace)["publish"]["allow"])


def subscribes(service: str, subject: str, namespace: str = "") -> bool:
    """The service's user may subscribe to subject."""
    return any(matches(p, subject) for p in permissions(service, namespace)["subscribe"]["allow"])


def test_each_rpc_is_served_only_by_its_owner_and_called_by_those_who_call_it() -> None:
    owners = {
        rpc.AUTH_INTROSPECT: "auth",
        rpc.AUTH_JWKS: "auth",
        rpc.REGISTRY_SNAPSHOT: "registry",
        rpc.REGISTRY_HOSTED: "registry",
        rpc.SANDBOX_CALL: "sandbox",
        rpc.SANDBOX_DISCOVER: "sandbox",
    }
    for subject, owner in owners.items():
        assert [s for s in SERVICES if subscribes(s, subject)] == [owner]
    assert [s for s in SERVICES if publishes(s, rpc.REGISTRY_SNAPSHOT)] == ["gateway"]
    assert [s for s in SERVICES if publishes(s, rpc.REGISTRY_HOSTED)] == ["sandbox"]
    assert [s for s in SERVICES if publishes(s, rpc.SANDBOX_CALL)] == ["gateway"]
    assert all(publishes(s, rpc.AUTH_INTROSPECT) for s in SERVICES)


def test_a_service_publishes_only_its_own_events() -> None:
    for service in SERVICES:
        for other in SERVICES:
            allowed = publishes(service, f"t1.events.{other}.x.created", "t1")
            assert allowed == (service == other), (service, other)


def test_the_durables_and_buckets_the_code_names_are_the_ones_permitted() -> None:
    assert ("audit-store", "events.>") in bus_access.ACCESS["audit"].consumes
    assert audit_consumers.DURABLE == "audit-store"
    assert registry_consumers.DURABLE in dict(bus_access.ACCESS["registry"].consumes)
    buckets = {sessions.KV_BUCKET, rate_limit.KV_BUCKET, task_records.KV_BUCKET}
    assert buckets == set(bus_access.ACCESS["gateway"].buckets)
    for subject in (
        subjects.GATEWAY_RETRY + ".gateway-1",
        subjects.GATEWAY_SSE + ".abc",
        subjects.GATEWAY_CANCEL,
        subjects.GATEWAY_REPLY,
        subjects.GATEWAY_RESOURCE_UNSUBSCRIBE,
        subjects.GATEWAY_SESSION_ENDED,
    ):
        assert publishes("gateway", subject) and subscribes("gateway", subject)
        assert not any(publishes(s, subject) for s in SERVICES if s != "gateway")


def test_a_consumer_may_be_created_only_with_its_own_filter() -> None:
    config = ConsumerConfig(name="registry-code-tools", durable_name="registry-code-tools")
    api = "$JS.API.CONSUMER.CREATE.t1_EVENTS.registry-code-tools"
    assert config.name == config.durable_name
    assert publishes("registry", f"{api}.t1.events.sandbox.code_tool.>", "t1")
    assert not publishes("registry", f"{api}.t1.events.>", "t1")
    assert not publishes("registry", f"{api}.t1.events.auth.>", "t1")
    assert not publishes("registry", api, "t1")  # no create without the filter in the subject
    assert not publishes("gateway", "$JS.API.CONSUMER.CREATE.t1_EVENTS.spy.t1.events.>", "t1")


def test_each_inbox_is_readable_by_its_service_only() -> None:
    for service in SERVICES:
        inbox = bus_access.inbox_prefix(service, "t1") + ".abc.1"
        assert [s for s in SERVICES if subscribes(s, inbox, "t1")] == [service]
        assert not subscribes(service, "_INBOX.abc", "t1")
