"""Two gateways and two audit consumers behind nginx: every tools/call stored exactly once.

A stack of the module's own (its replicas are killed and restarted here) keeps arguments in full
(the registry's `audit_arguments` setting), so each call's unique `text` identifies its record.
Calls of both protocol generations run at once through nginx: stateless 2026-07-28 requests and
2025-11-25 sessions of the official Python SDK client, whose session ids any gateway accepts.

Sandbox replicas are shown in tests/integration/sandbox/test_replicas.py: one replica owns a
hosted stdio server's process, the other forwards its calls to it, and takes over when it goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import httpx
import httpx2
import nats
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from libs.devstack import postgres
from libs.devstack.harness import until
from libs.devstack.services import ServiceProcess
from tests.e2e.conftest import SecuredStack, running_stack
from tests.e2e.gateway_support import (
    admin_token,
    api_key,
    bearer,
    call_tool,
    register,
    wait_listed,
)
from tests.integration.gateway.conftest import calculator
from tests.support.upstreams import run_upstream

CALLS = 2000
STATELESS_WORKERS = 12
SESSIONS = 4  # 2025-11-25 sessions, each with SESSION_CALLERS calls in flight
SESSION_CALLERS = 3
INSTANCE = "x-switchboard-instance"
GATEWAY_CALLS = "switchboard_gateway_tool_calls_total"
AUDIT_WRITTEN = "switchboard_audit_records_written_total"
# a SIGKILLed audit replica's unacknowledged batch goes to the survivor after this long
ACK_WAIT_S = 3
STACK = {"AUDIT_ACK_WAIT_S": str(ACK_WAIT_S)}


@dataclass
class Scaled:
    """The stack with two routed gateway and audit replicas, an API key and one upstream."""

    stack: SecuredStack
    key: str
    server: str

    @property
    def tool(self) -> str:
        """The upstream's echo tool as /mcp names it."""
        return f"{self.server}__echo"

    def live(self, service: str) -> list[ServiceProcess]:
        """The live replicas of service."""
        return [r for r in self.stack.replicas_of(service) if r.alive()]


@dataclass
class Run:
    """What the callers saw: answered ids, failures, the replica that answered each request."""

    ids: list[str]
    answered: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)  # id → what went wrong
    stateless_by: Counter[str] = field(default_factory=Counter)
    session_by: Counter[str] = field(default_factory=Counter)
    by_generation: Counter[str] = field(default_factory=Counter)


@pytest.fixture(scope="module")
async def scaled(pg_server: postgres.Postgres, namespace: str) -> AsyncIterator[Scaled]:
    """Boot a stack, add a second gateway and audit replica, register a calculator upstream."""
    async with (
        run_upstream(calculator()) as url,
        running_stack(pg_server, namespace, "scale", STACK) as stack,
        httpx.AsyncClient(base_url=stack.url, timeout=10) as api,
    ):
        await stack.start_replica("gateway")
        await stack.start_replica("audit")
        token = await admin_token(api)
        scaled = Scaled(stack, await api_key(api, token), f"calc{secrets.token_hex(3)}")
        await register(api, token, scaled.server, url)
        resp = await api.put(
            "/api/v1/settings/audit_arguments", json={"value": "full"}, headers=bearer(token)
        )
        assert resp.status_code == 200, resp.text
        for replica in scaled.live("gateway"):
            await wait_listed(api, replica.url, scaled.key, scaled.tool)
            await until(
                lambda r=replica: records_in_full(scaled, r),
                timeout=15,
                what=f"{replica.instance}'s records with their arguments",
            )
        yield scaled


async def records_in_full(scaled: Scaled, replica: ServiceProcess) -> bool:
    """One call on `replica`; whether its record (found by trace id) keeps the arguments whole."""
    trace, uid = secrets.token_hex(16), f"warm-{secrets.token_hex(6)}"
    traceparent = {"traceparent": f"00-{trace}-{secrets.token_hex(8)}-01"}
    async with httpx.AsyncClient(timeout=10) as http:
        resp = await call_tool(
            http, replica.url, scaled.key, scaled.tool, {"text": uid}, traceparent
        )
    assert resp.status_code == 200, resp.text
    conn = await asyncpg.connect(scaled.stack.admin_database_url)
    try:
        arguments = await until(
            lambda: conn.fetchval(
                "SELECT arguments->>'text' FROM audit.tool_calls WHERE trace_id = $1", trace
            ),
            timeout=10,
            what=f"the record of trace {trace}",
        )
    finally:
        await conn.close()
    return arguments == uid


async def drive(scaled: Scaled, run: Run, progress: Callable[[int], Awaitable[None]]) -> None:
    """Make every call of `run` once, from stateless callers and SDK sessions side by side.

    `progress` is awaited (in a task of its own) with the number answered after each answer."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for uid in run.ids:
        queue.put_nowait(uid)
    observers: list[asyncio.Task[None]] = []

    def answered(uid: str, generation: str) -> None:
        run.answered.add(uid)
        run.by_generation[generation] += 1
        observers.append(asyncio.create_task(progress(len(run.answered))))

    async def stateless(api: httpx.AsyncClient) -> None:
        while not queue.empty():
            uid = queue.get_nowait()
            try:
                resp = await call_tool(api, "", scaled.key, scaled.tool, {"text": uid})
            except httpx.TransportError as exc:
                run.failed[uid] = repr(exc)
                continue
            body = resp.json() if resp.status_code == 200 else {}
            if body.get("result", {}).get("structuredContent") == {"result": uid}:
                run.stateless_by[resp.headers[INSTANCE]] += 1
                answered(uid, "stateless")
            else:
                run.failed[uid] = f"{resp.status_code} {resp.text[:200]}"

    async def session() -> None:
        async def note(response: httpx2.Response) -> None:
            if response.request.method == "POST" and "mcp-session-id" in response.request.headers:
                run.session_by[response.headers.get(INSTANCE, "nginx")] += 1

        while not queue.empty():
            # a session whose connection a gateway restart cuts ends (the SDK's own task group
            # fails): its calls in flight are failed calls, and a new session takes the rest,
            # as a client reconnecting would
            inflight: set[str] = set()
            try:
                await one_session(note, inflight)
            except* (httpx2.TransportError, MCPError) as group:
                for uid in inflight:
                    run.failed[uid] = repr(group.exceptions[0])

    async def one_session(note: Callable[..., Awaitable[None]], inflight: set[str]) -> None:
        http = httpx2.AsyncClient(
            headers=bearer(scaled.key), timeout=30, event_hooks={"response": [note]}
        )
        connection = streamable_http_client(f"{scaled.stack.url}/mcp", http_client=http)
        async with http, Client(connection, mode="legacy") as client:

            async def caller() -> None:
                while not queue.empty():
                    uid = queue.get_nowait()
                    inflight.add(uid)
                    try:
                        result = await client.call_tool(scaled.tool, {"text": uid})
                    except Exception as exc:  # noqa: BLE001 - a failed call is reported, not fatal
                        run.failed[uid] = repr(exc)
                        continue
                    finally:
                        inflight.discard(uid)
                    if result.structured_content == {"result": uid} and not result.is_error:
                        answered(uid, "session")
                    else:
                        run.failed[uid] = repr(result)

            await asyncio.gather(*(caller() for _ in range(SESSION_CALLERS)))

    async with httpx.AsyncClient(base_url=scaled.stack.url, timeout=30) as api:
        await asyncio.gather(
            *(stateless(api) for _ in range(STATELESS_WORKERS)),
            *(session() for _ in range(SESSIONS)),
        )
    await asyncio.gather(*observers)


async def counter(replica: ServiceProcess, name: str, **labels: str) -> float:
    """The sum of a counter's samples on one replica's /metrics whose labels include `labels`."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{replica.url}/metrics")).text
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(w in line for w in wanted)
    )


async def counters(replicas: list[ServiceProcess], name: str, **labels: str) -> dict[str, float]:
    """counter() of each replica, by instance."""
    return {r.instance: await counter(r, name, **labels) for r in replicas}


async def stored(scaled: Scaled, run: Run, wait_for: set[str]) -> Counter[str]:
    """How many records each `text` of the run has, once `wait_for` are all stored.

    And once the audit consumer has nothing pending or unacknowledged (redeliveries included)."""
    ids = set(run.ids)
    conn = await asyncpg.connect(scaled.stack.admin_database_url)
    try:

        async def records() -> Counter[str]:
            rows = await conn.fetch(
                "SELECT arguments->>'text' AS text, count(*) AS n FROM audit.tool_calls"
                " WHERE server = $1 GROUP BY 1",
                scaled.server,
            )
            return Counter({r["text"]: r["n"] for r in rows if r["text"] in ids})

        async def complete() -> bool:
            return wait_for <= set(await records()) and await consumer_idle(scaled.stack)

        with contextlib.suppress(TimeoutError):  # the assertions then say what is missing
            await until(complete, timeout=60, what="every answered call stored")
        return await records()
    finally:
        await conn.close()


async def consumer_idle(stack: SecuredStack) -> bool:
    """The audit-store consumer has nothing pending and nothing awaiting an acknowledgement."""
    admin = stack.nats_auth.admin
    assert admin is not None
    nc = await nats.connect(stack.config.nats_url, user=admin.name, password=admin.password)
    try:
        info = await nc.jetstream().consumer_info(f"{stack.config.namespace}_EVENTS", "audit-store")
        return info.num_pending == 0 and info.num_ack_pending == 0
    finally:
        await nc.close()


def new_run(tag: str) -> Run:
    """CALLS unique call ids."""
    return Run([f"{tag}-{i:05d}-{secrets.token_hex(4)}" for i in range(CALLS)])


async def nothing(answered: int) -> None:
    """No disruption."""


async def test_calls_over_two_gateways_and_two_audit_consumers_are_stored_exactly_once(
    scaled: Scaled,
) -> None:
    gateways, audits = scaled.live("gateway"), scaled.live("audit")
    assert len(gateways) == len(audits) == 2
    served_before = await counters(gateways, GATEWAY_CALLS, server=scaled.server)
    written_before = await counters(audits, AUDIT_WRITTEN, kind="call")
    run = new_run("steady")

    async with asyncio.timeout(180):
        await drive(scaled, run, nothing)
        records = await stored(scaled, run, set(run.ids))

    assert not run.failed, list(run.failed.items())[:5]
    assert run.answered == set(run.ids)
    assert run.by_generation["stateless"] > 0 and run.by_generation["session"] > 0
    # each generation was served by both replicas: a session is not pinned to its first replica
    assert set(run.stateless_by) == {g.instance for g in gateways}, run.stateless_by
    assert set(run.session_by) == {g.instance for g in gateways}, run.session_by
    missing = set(run.ids) - set(records)
    assert not missing, (
        f"{len(missing)} of {CALLS} calls have no record, e.g. {sorted(missing)[:3]}"
    )
    assert set(records.values()) == {1}, records.most_common(3)
    served = await counters(gateways, GATEWAY_CALLS, server=scaled.server)
    written = await counters(audits, AUDIT_WRITTEN, kind="call")
    served_now = {i: served[i] - served_before[i] for i in served}
    written_now = {i: written[i] - written_before[i] for i in written}
    assert sum(served_now.values()) == CALLS and min(served_now.values()) > 0, served_now
    assert sum(written_now.values()) == CALLS and min(written_now.values()) > 0, written_now


async def test_killing_an_audit_consumer_and_restarting_a_gateway_mid_run_loses_and_doubles_nothing(
    scaled: Scaled,
) -> None:
    stack = scaled.stack
    gateways, audits = scaled.live("gateway"), scaled.live("audit")
    assert len(gateways) == len(audits) == 2
    killed_audit, surviving_audit = audits
    restarted, kept = gateways
    written_before = await counter(surviving_audit, AUDIT_WRITTEN, kind="call")
    replacement: list[ServiceProcess] = []
    run = new_run("disrupted")

    async def disrupt(answered: int) -> None:
        if answered == CALLS // 5:
            killed_audit.kill()  # SIGKILL: its unacknowledged batch is redelivered
        elif answered == CALLS // 3:  # early enough for the replacement to serve a share
            await asyncio.to_thread(restarted.stop)  # SIGTERM: in-flight calls finish
            replacement.append(await stack.restart("gateway"))

    async with asyncio.timeout(240):
        await drive(scaled, run, disrupt)
        records = await stored(scaled, run, run.answered)

    assert not killed_audit.alive() and not restarted.alive()
    assert set(records.values()) == {1}, records.most_common(3)  # nothing doubled
    lost = run.answered - set(records)
    assert not lost, f"{len(lost)} answered calls have no record, e.g. {sorted(lost)[:3]}"
    # a call that failed in the restart may or may not have reached the upstream; it is
    # recorded at most once either way, and such failures stay a handful
    assert len(run.failed) <= CALLS // 100, list(run.failed.items())[:5]
    assert run.by_generation["stateless"] > 0 and run.by_generation["session"] > 0
    (new_gateway,) = replacement
    served_by_new = await counter(new_gateway, GATEWAY_CALLS, server=scaled.server)
    assert served_by_new > 0  # the replacement took its share of the calls
    assert kept.instance in run.stateless_by and new_gateway.instance in run.session_by
    written = await counter(surviving_audit, AUDIT_WRITTEN, kind="call")
    assert written - written_before > CALLS // 2  # the survivor stored the rest alone
