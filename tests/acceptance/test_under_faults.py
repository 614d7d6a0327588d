"""Faults under load, while both MCP generations call a tool through nginx.

The faults: one of two gateway replicas killed, NATS restarted (after a crash, and after a
hang), Postgres restarted.

Every call must end in a result or a clean JSON-RPC error (never an HTML page, a bare 5xx, a
reset or a hang), a valid credential is never refused as unauthenticated because the platform is
having an outage, and every call that succeeded has exactly one audit record (matched by the
trace id the call carried)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from libs.devstack.stack import StackError
from tests.acceptance.audit_trail import records_by_trace
from tests.acceptance.load import Load, Outcome
from tests.acceptance.platform_boot import Platform
from tests.acceptance.rest import Admin, expect, unique
from tests.acceptance.wire import register_http
from tests.e2e.gateway_support import wait_listed
from tests.support.upstreams import run_upstream

RECOVERED_AFTER = 20  # successful calls that show the platform serves again after a fault
RECOVERY_S = 60.0
# how long NATS or Postgres stays down (or hung): longer than one publish of a call's audit record
# waits for JetStream's acknowledgement (2 s, retried until GATEWAY_AUDIT_DEADLINE_S), as a
# restart of a server with a large store can take
OUTAGE_S = 8.0
IN_FLIGHT = 8  # slow calls running when the gateway replica dies (round robin: some on it)
SLOW_S = 3.0
UNAUTHENTICATED = -32001


class SlowUpstream:
    """A Python SDK upstream whose `temperature` takes SLOW_S, counting the calls it started."""

    def __init__(self) -> None:
        self.started = 0
        self.changed = asyncio.Event()
        self.server = MCPServer("slow")

        @self.server.tool(description="Current temperature in a city, slowly.")
        async def temperature(city: str) -> str:
            self.started += 1
            self.changed.set()
            await asyncio.sleep(SLOW_S)
            return f"21C in {city}"

    async def running(self, n: int) -> None:
        """Wait until `n` calls have started upstream."""
        async with asyncio.timeout(15):
            while self.started < n:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def slow(api: httpx.AsyncClient, admin: Admin) -> AsyncIterator[tuple[SlowUpstream, str]]:
    """The slow upstream registered; yields it and its tool's name on /mcp."""
    upstream = SlowUpstream()
    name = unique("slow")
    async with run_upstream(upstream.server) as url:
        await register_http(api, admin, name, url)
        yield upstream, f"{name}__temperature"
        resp = await api.delete(f"/api/v1/servers/{name}", headers=admin.headers)
        expect(resp, 204, "registry: delete a server")


async def reaches(api: httpx.AsyncClient, instances: set[str]) -> None:
    """Wait until nginx routes to every one of `instances`."""
    seen: set[str] = set()
    try:
        async with asyncio.timeout(10):
            while not instances <= seen:
                resp = await api.get("/healthz/gateway")
                seen.add(resp.headers.get("x-switchboard-instance", ""))
    except TimeoutError:
        raise AssertionError(f"faults: nginx routes to {instances}, only reached {seen}") from None


def by_phase(outcomes: list[Outcome], show: Callable[[Outcome], str]) -> str:
    """How many outcomes per phase, with a few examples each."""
    grouped: dict[str, list[str]] = {}
    for o in outcomes:
        grouped.setdefault(o.phase, []).append(show(o))
    return "; ".join(f"{p}: {len(d)} (e.g. {d[:3]})" for p, d in grouped.items())


async def unaudited(api: httpx.AsyncClient, admin: Admin, outcomes: list[Outcome]) -> list[str]:
    """Succeeded calls without exactly one audit record, each with its record count."""
    succeeded = [o for o in outcomes if o.method == "tools/call" and o.verdict == "ok"]
    wrong = []
    for server in {o.tool.split("__")[0] for o in succeeded}:
        mine = {o.trace: o for o in succeeded if o.tool.startswith(f"{server}__")}
        records = await records_by_trace(api, admin, server, set(mine), wait_s=90)
        wrong += [
            f"{mine[t].phase}: {mine[t].generation} at {mine[t].at}s, trace {t}: {len(r)} records"
            for t, r in records.items()
            if len(r) != 1
        ]
    return wrong


async def test_calls_under_a_killed_gateway_restarted_nats_and_postgres_end_cleanly_and_audited(
    platform: Platform,
    api: httpx.AsyncClient,
    admin: Admin,
    weather: str,
    slow: tuple[SlowUpstream, str],
) -> None:
    stack = platform.stack
    upstream, slow_tool = slow
    tool = f"{weather}__temperature"
    while len([r for r in stack.replicas_of("gateway") if r.alive()]) < 2:
        await stack.start_replica("gateway")
    gateways = [r for r in stack.replicas_of("gateway") if r.alive()]
    for replica in gateways:
        await wait_listed(api, replica.url, admin.key, slow_tool)
    await reaches(api, {r.instance for r in gateways})
    # a credential no service has checked yet, to be first checked while Postgres is down
    resp = await api.post("/api/v1/keys", json={"name": unique("unchecked")}, headers=admin.headers)
    unchecked_key = expect(resp, 201, "auth: create an API key")["key"]
    load = Load(platform.url, admin.key, tool)
    running = asyncio.create_task(load.run())

    async def fault(phase: str, act: Callable[[], Awaitable[None]]) -> None:
        """Enter `phase`, act, and wait until calls succeed again."""
        load.phase = phase
        await act()
        recovered = await load.until(phase, RECOVERED_AFTER, "ok", RECOVERY_S)
        assert recovered, (
            f"faults: {phase}: fewer than {RECOVERED_AFTER} calls succeeded within "
            f"{RECOVERY_S:.0f}s after it: {load.summary()}; {platform.logs()}"
        )

    async def nothing() -> None:
        """No fault: the load runs as it normally does."""

    async def kill_gateway() -> None:
        calls = [asyncio.create_task(load.once(slow_tool)) for _ in range(IN_FLIGHT)]
        await upstream.running(IN_FLIGHT)
        gateways[0].kill()
        await asyncio.gather(*calls)

    async def restart_nats() -> None:
        await platform.nats.kill()
        await asyncio.sleep(OUTAGE_S)  # the outage itself
        await platform.nats.start()

    async def restart_hung_nats() -> None:
        platform.nats.freeze()
        await asyncio.sleep(OUTAGE_S)  # the hang itself
        await platform.nats.kill()
        await platform.nats.start()

    async def restart_postgres() -> None:
        await platform.postgres.stop("immediate")
        await asyncio.sleep(OUTAGE_S / 2)  # the outage itself
        await load.once(tool, unchecked_key)
        await asyncio.sleep(OUTAGE_S / 2)
        await platform.postgres.start()

    try:
        await fault("steady", nothing)
        await fault("one of two gateway replicas killed mid-call", kill_gateway)
        await fault("NATS killed and restarted", restart_nats)
        await fault("NATS hung, then restarted", restart_hung_nats)
        await fault("Postgres killed and restarted", restart_postgres)
    finally:
        load.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 60)

    problems = []
    recovered = True
    try:
        await stack.restart("gateway")  # back to two replicas, for the tests that follow
        await stack.wait_healthy(RECOVERY_S)
    except StackError as exc:
        recovered = False
        problems.append(f"every service reports up again afterwards: {exc}")
    unclean = [o for o in load.outcomes if o.verdict == "unclean"]
    if unclean:
        problems.append(
            "every call ends in a result or a clean JSON-RPC error; not clean: "
            + by_phase(unclean, lambda o: f"{o.generation} {o.method} at {o.at}s: {o.detail}")
        )
    refused = [o for o in load.outcomes if o.code == UNAUTHENTICATED]
    if refused:
        problems.append(
            "a valid API key is never refused as unauthenticated during an outage (the client "
            "should retry, not drop its credential: docs/AUTH.md says 503): "
            + by_phase(refused, lambda o: f"{o.generation} at {o.at}s: {o.detail}")
        )
    if not recovered:
        problems.append("audit records not checked: the platform did not recover")
    elif wrong := await unaudited(api, admin, load.outcomes):
        problems.append(
            f"every succeeded call has exactly one audit record; not: {len(wrong)}, "
            f"e.g. {wrong[:4]}"
        )
    assert not problems, (
        "faults: " + "\nfaults: ".join(problems) + f"\nall answers: {load.summary()}; "
        f"{platform.logs()}"
    )
