"""NATS refuses what a service's code should never do.

A real nats-server with the users `make run` and the test stacks generate
(libs/devstack/natsauth.py, libs/common/bus_access.py), and each service's real Bus doing its own
work within its permissions."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nats
import orjson
import pytest
from nats.aio.client import Client as NatsClient
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig

from libs.common import bus as busmod
from libs.common import rpc
from libs.common.bus import Bus
from libs.common.bus_access import SERVICES, inbox_prefix
from libs.common.errors import Unavailable, UpstreamTimeout
from libs.common.events import Event
from libs.common.settings import Settings
from libs.devstack import natsauth
from libs.devstack.harness import until
from libs.devstack.nats import Nats, permission_violations, start_private_server
from libs.devstack.natsauth import NatsAuth
from services.audit import platform_metrics

NAMESPACE = f"t{secrets.token_hex(4)}perm"
REFUSED_WITHIN_S = 1.0  # a refused publish is dropped: the caller waits this long for nothing


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Nats, NatsAuth, Path]]:
    """A private nats-server with a user per service (and an admin user for probes)."""
    auth = natsauth.generate(NAMESPACE, admin=True)
    base = tmp_path_factory.mktemp("nats-perm")
    log = base / "nats.log"
    server = start_private_server("nats-perm", auth=auth, store=base / "store", log=log)
    yield server, auth, log
    server.stop()


def settings_as(service: str, url: str, auth: NatsAuth) -> Settings:
    """Settings of `service` signing in as its own user, as a service's process reads them."""
    kind = type(f"{service.title()}Settings", (Settings,), {"service": service})
    return kind.from_env(
        {"NATS_URL": url, "SWITCHBOARD_NAMESPACE": NAMESPACE, **auth.service_env(service)}
    )


@asynccontextmanager
async def bus_of(service: str, secured: tuple[Nats, NatsAuth, Path]) -> AsyncIterator[Bus]:
    """The service's own Bus (libs.common.bus.connect, the stream ensured)."""
    server, auth, _ = secured
    async with busmod.connect(settings_as(service, server.url, auth)) as bus:
        yield bus


@asynccontextmanager
async def raw_client(
    service: str, secured: tuple[Nats, NatsAuth, Path], errors: list[str]
) -> AsyncIterator[NatsClient]:
    """A plain nats-py client signed in as the service's user; server errors land in errors."""
    server, auth, _ = secured

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    user = auth.users[service]
    client = await nats.connect(
        server.url,
        user=user.name,
        password=user.password,
        inbox_prefix=inbox_prefix(service, NAMESPACE),
        error_cb=on_error,
        max_reconnect_attempts=0,
    )
    try:
        yield client
    finally:
        await client.close()


async def admin_client(secured: tuple[Nats, NatsAuth, Path]) -> NatsClient:
    """A client with every permission (the test's own eyes)."""
    server, auth, _ = secured
    return await nats.connect(auth.admin_url(server.url), max_reconnect_attempts=0)


async def answered(bus: Bus, subject: str, data: dict) -> object:
    """Repeat bus.request while the server has not seen the responder's subscription yet.

    That happens on a loaded machine: permitted requests are answered, refused ones never are."""

    async def answered() -> list[Any]:
        return [await bus.request(subject, data)]  # a list: even an empty reply is an answer

    # Unavailable: no responders yet
    return (await until(answered, timeout=5, what=subject, retry_on=(Unavailable,)))[0]


def ns(subject: str) -> str:
    """The subject `subject` under the test's namespace."""
    return f"{NAMESPACE}.{subject}"


async def until_refused(errors: list[str], subject: str, kind: str = "subscription") -> None:
    """Wait for the server's permissions violation (subscription or publish) about subject."""
    try:
        # nats-py lower-cases the server's message
        needle = f'violation for {kind} to "{subject.lower()}'
        await until(lambda: any(needle in e for e in errors), timeout=5, interval=0.02)
    except TimeoutError:
        raise AssertionError(f"not refused: {subject}; errors: {errors}") from None


async def sign_in(url: str, credentials: dict[str, str]) -> bytes:
    """The server's answer to a CONNECT with credentials, then PING.

    The wire protocol, as any program on the host could speak it."""
    host, port = url.removeprefix("nats://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        assert (await reader.readline()).startswith(b"INFO ")
        connect = {"verbose": False, "pedantic": False, **credentials}
        writer.write(b"CONNECT " + orjson.dumps(connect) + b"\r\nPING\r\n")
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_a_connection_without_credentials_or_with_a_wrong_password_is_refused(
    secured: tuple[Nats, NatsAuth, Path],
) -> None:
    server, auth, _ = secured
    refused = b"-ERR 'Authorization Violation'\r\n"
    assert await sign_in(server.url, {}) == refused
    wrong = {"user": "gateway", "pass": auth.users["registry"].password}
    assert await sign_in(server.url, wrong) == refused
    right = {"user": "gateway", "pass": auth.users["gateway"].password}
    assert await sign_in(server.url, right) == b"PONG\r\n"


async def test_the_gateways_user_cannot_subscribe_to_the_registrys_snapshot_subject(
    secured: tuple[Nats, NatsAuth, Path],
) -> None:
    errors: list[str] = []
    snapshot = {"servers": [{"name": "other-org", "headers": {"Authorization": "secret"}}]}

    async def answer(data: dict) -> dict:
        return snapshot

    async with raw_client("gateway", secured, errors) as gateway:
        stolen = await gateway.subscribe(ns(rpc.REGISTRY_SNAPSHOT))
        await until_refused(errors, ns(rpc.REGISTRY_SNAPSHOT))
        # nor may it read the replies sent to another service's inbox
        for inbox in (inbox_prefix("sandbox", NAMESPACE) + ".>", "_INBOX.>"):
            await gateway.subscribe(inbox)
            await until_refused(errors, inbox)
        async with bus_of("registry", secured) as registry, bus_of("gateway", secured) as caller:
            await registry.serve(rpc.REGISTRY_SNAPSHOT, answer)
            await registry.nc.flush()
            # a request is answered by the registry alone; the refused subscription saw nothing
            assert await answered(caller, rpc.REGISTRY_SNAPSHOT, {}) == snapshot
            with pytest.raises(NatsTimeout):
                await stolen.next_msg(timeout=0.3)


async def test_the_gateways_user_cannot_publish_auth_events(
    secured: tuple[Nats, NatsAuth, Path],
) -> None:
    forged = Event(type="auth.user.created", source="gateway", data={"id": "forged"})
    async with bus_of("gateway", secured) as gateway:
        with pytest.raises(NatsTimeout):
            await gateway.publish(forged, timeout=REFUSED_WITHIN_S)
        # its own events it may publish, acknowledged by the stream
        await gateway.publish(Event(type="gateway.tool.called", source="gateway", data={}))
        errors: list[str] = []
        async with raw_client("gateway", secured, errors) as raw:
            await raw.publish(ns("events.auth.session.revoked"), b"{}")
            await until_refused(errors, ns("events.auth.session.revoked"), "publish")
    admin = await admin_client(secured)
    try:
        info = await admin.jetstream().stream_info(
            f"{NAMESPACE}_EVENTS", subjects_filter=ns("events.auth.>")
        )
        assert not info.state.subjects  # nothing of it reached the stream
    finally:
        await admin.close()


async def test_the_sandboxs_user_cannot_call_the_registry_snapshot(
    secured: tuple[Nats, NatsAuth, Path],
) -> None:
    async with bus_of("registry", secured) as registry, bus_of("sandbox", secured) as sandbox:
        calls: list[str] = []

        async def snapshot(data: dict) -> dict:
            calls.append("snapshot")
            return {"servers": [{"name": "other-org", "headers": {"Authorization": "secret"}}]}

        async def hosted(data: dict) -> dict:
            calls.append("hosted")
            return {"server": {"name": data["server"], "transport": "stdio"}}

        await registry.serve(rpc.REGISTRY_SNAPSHOT, snapshot)
        await registry.serve(rpc.REGISTRY_HOSTED, hosted)
        await registry.nc.flush()
        with pytest.raises(UpstreamTimeout):
            await sandbox.request(rpc.REGISTRY_SNAPSHOT, {}, timeout=REFUSED_WITHIN_S)
        # the one server it hosts it may ask for
        reply = await answered(sandbox, rpc.REGISTRY_HOSTED, {"server": "echo"})
        assert reply == {"server": {"name": "echo", "transport": "stdio"}}
        assert calls == ["hosted"]


async def test_a_service_cannot_read_more_events_than_its_consumer_filter(
    secured: tuple[Nats, NatsAuth, Path],
) -> None:
    stream = f"{NAMESPACE}_EVENTS"
    async with bus_of("registry", secured) as registry:
        # its own durable with a wider filter than bus_access grants it
        wide = ConsumerConfig(
            name="registry-code-tools",
            durable_name="registry-code-tools",
            filter_subject=ns("events.>"),
        )
        with pytest.raises((NatsTimeout, TimeoutError)):
            await registry.js.add_consumer(stream, wide, timeout=REFUSED_WITHIN_S)
    async with bus_of("gateway", secured) as gateway:
        anyone = ConsumerConfig(name="gateway-spy", durable_name="gateway-spy")
        with pytest.raises((NatsTimeout, TimeoutError)):
            await gateway.js.add_consumer(stream, anyone, timeout=REFUSED_WITHIN_S)


async def test_every_service_does_its_own_work_within_its_permissions(
    secured: tuple[Nats, NatsAuth, Path],
) -> None:
    _, _, log = secured
    before = len(permission_violations(log))
    async with (
        bus_of("auth", secured) as auth,
        bus_of("registry", secured) as registry,
        bus_of("gateway", secured) as gateway,
        bus_of("sandbox", secured) as sandbox,
        bus_of("audit", secured) as audit,
    ):
        buses = {"auth": auth, "registry": registry, "gateway": gateway}
        buses |= {"sandbox": sandbox, "audit": audit}
        await _serve_and_call(auth, registry, gateway, sandbox)
        await _follow_and_consume(buses)
        await _live_subjects(gateway, sandbox, audit)
        await _gateway_buckets(gateway)
        await _audit_figures(audit)
    assert permission_violations(log)[before:] == []


async def _audit_figures(audit: Bus) -> None:
    """Audit reads every platform stream's and durable's info for /metrics (nothing more)."""
    figures = await platform_metrics.read_jetstream(audit)
    streams = {labels[0] for labels, _ in figures["switchboard_jetstream_stream_messages"]}
    assert {"EVENTS", "KV_gateway"} <= streams
    durables = {
        labels[1] for labels, _ in figures["switchboard_jetstream_consumer_pending_messages"]
    }
    assert {"audit-store", "registry-code-tools"} <= durables


async def _serve_and_call(auth: Bus, registry: Bus, gateway: Bus, sandbox: Bus) -> None:
    """Every RPC of docs/CONTRACTS.md, asked by the services that ask it."""

    async def answer(data: dict) -> dict:
        return {"ok": data}

    await auth.serve(rpc.AUTH_INTROSPECT, answer)
    await auth.serve(rpc.AUTH_JWKS, answer)
    await registry.serve(rpc.REGISTRY_SNAPSHOT, answer)
    await sandbox.serve(rpc.SANDBOX_CALL, answer)
    await sandbox.serve(rpc.SANDBOX_DISCOVER, answer)
    await sandbox.serve(f"{rpc.SANDBOX_REPLICA}.sandbox-2.call", answer)
    for bus in (auth, registry, sandbox):
        await bus.nc.flush()
    for bus in (auth, registry, gateway, sandbox):
        assert await answered(bus, rpc.AUTH_JWKS, {"n": 1}) == {"ok": {"n": 1}}
        assert await answered(bus, rpc.AUTH_INTROSPECT, {"n": 2}) == {"ok": {"n": 2}}
    assert await answered(gateway, rpc.REGISTRY_SNAPSHOT, {}) == {"ok": {}}
    assert await answered(gateway, rpc.SANDBOX_CALL, {"s": 1}) == {"ok": {"s": 1}}
    assert await answered(registry, rpc.SANDBOX_DISCOVER, {"s": 2}) == {"ok": {"s": 2}}
    replica = f"{rpc.SANDBOX_REPLICA}.sandbox-2.call"
    assert await answered(sandbox, replica, {"s": 3}) == {"ok": {"s": 3}}


async def _follow_and_consume(buses: dict[str, Bus]) -> None:
    """Each service's events reach the stream, its live followers and durable consumers."""
    seen: dict[str, set[str]] = {}

    def collect(key: str) -> Callable[[Event], Awaitable[None]]:
        async def handler(event: Event) -> None:
            seen.setdefault(key, set()).add(event.id)

        return handler

    for name in SERVICES:
        await buses[name].follow("events.auth.>", collect(f"{name} follows auth"))
    await buses["gateway"].follow("events.registry.>", collect("gateway follows registry"))
    await buses["sandbox"].follow("events.registry.server.>", collect("sandbox follows servers"))
    for bus in buses.values():
        await bus.nc.flush()  # the subscriptions are on the server before anything is sent
    buses["registry"].consume(
        "registry-code-tools", ["events.sandbox.code_tool.>"], collect("registry consumes")
    )
    buses["audit"].consume("audit-store", ["events.>"], collect("audit consumes"))
    sent = {
        name: Event(type=f"{name}.service.heartbeat", source=name, data={}) for name in SERVICES
    }
    for name, event in sent.items():
        await buses[name].publish(event)
    code_tool = Event(type="sandbox.code_tool.created", source="sandbox", data={})
    server = Event(type="registry.server.updated", source="registry", data={})
    await buses["sandbox"].publish(code_tool)
    await buses["registry"].publish(server)
    expected = {f"{name} follows auth": {sent["auth"].id} for name in SERVICES}
    expected["gateway follows registry"] = {sent["registry"].id, server.id}
    expected["sandbox follows servers"] = {server.id}
    expected["registry consumes"] = {code_tool.id}
    expected["audit consumes"] = {e.id for e in sent.values()} | {code_tool.id, server.id}
    await until(
        lambda: all(ids <= seen.get(key, set()) for key, ids in expected.items()),
        timeout=10,
        what="every follower and consumer to see its events",
    )
    assert seen["sandbox follows servers"] == {server.id}
    assert seen["registry consumes"] == {code_tool.id}


async def _live_subjects(gateway: Bus, sandbox: Bus, audit: Bus) -> None:
    """The unstored core subjects: sandbox logs to audit, gateway replicas among themselves."""
    logs: asyncio.Queue = asyncio.Queue()
    cancels: asyncio.Queue = asyncio.Queue()
    await audit.nc.subscribe(audit.subject("live.sandbox.logs.>"), cb=logs.put)
    await gateway.nc.subscribe(gateway.subject("live.gateway.cancel"), cb=cancels.put)

    async def retry(msg: object) -> None:
        await msg.respond(b"retried")  # type: ignore[attr-defined]

    await gateway.nc.subscribe(gateway.subject("live.gateway.retry.gateway-2"), cb=retry)
    await audit.nc.flush()
    await gateway.nc.flush()
    await sandbox.nc.publish(sandbox.subject("live.sandbox.logs.echo"), b"line")
    await gateway.nc.publish(gateway.subject("live.gateway.cancel"), b"{}")
    reply = await gateway.nc.request(gateway.subject("live.gateway.retry.gateway-2"), b"{}")
    assert reply.data == b"retried"
    async with asyncio.timeout(5):
        assert (await logs.get()).data == b"line"
        assert (await cancels.get()).data == b"{}"


async def _gateway_buckets(gateway: Bus) -> None:
    """The gateway's KV buckets: create, get, update, put, watch, delete."""
    sessions = await gateway.key_value("gateway")
    await sessions.create("secret", b"s3")
    assert (await sessions.get("secret")).value == b"s3"
    limits = await gateway.key_value("gateway_ratelimit", ttl_s=60)
    revision = await limits.create("team-a.1", b"1")
    await limits.update("team-a.1", b"2", last=revision)
    tasks = await gateway.key_value("gateway_tasks", ttl_s=60)
    await tasks.put("owner.route.task-1", b"{}")
    watcher = await tasks.watch("owner.>", ignore_deletes=True)
    async with asyncio.timeout(5):
        entry = await watcher.updates(timeout=5)
        assert entry is not None and entry.key == "owner.route.task-1"
    await watcher.stop()
    await tasks.delete("owner.route.task-1")
