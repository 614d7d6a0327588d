"""Two gateway replicas behind nginx round-robin: spread, shared sessions, sync, crash safety."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from libs.devstack.services import ServiceProcess
from tests.e2e.conftest import SecuredStack
from tests.e2e.gateway_support import (
    admin_token,
    api_key,
    bearer,
    call_tool,
    list_tools,
    register,
    tool_names,
    wait_listed,
)
from tests.integration.gateway.conftest import calculator
from tests.support.mcp_messages import initialize
from tests.support.upstreams import run_upstream

INSTANCE = "x-switchboard-instance"


@dataclass
class Gateways:
    """Two routed gateway replicas, an admin JWT and API key, one registered upstream."""

    stack: SecuredStack
    replicas: list[ServiceProcess]
    token: str
    key: str
    server: str

    @property
    def tool(self) -> str:
        """The upstream's echo tool as /mcp names it."""
        return f"{self.server}__echo"


@pytest.fixture(scope="module")
async def gateways(e2e_stack: SecuredStack) -> AsyncIterator[Gateways]:
    """Make sure two gateway replicas are routed; register a calculator upstream."""
    live = [r for r in e2e_stack.replicas_of("gateway") if r.alive()]
    while len(live) < 2:
        live.append(await e2e_stack.start_replica("gateway"))
    async with (
        run_upstream(calculator()) as url,
        httpx.AsyncClient(base_url=e2e_stack.url, timeout=10) as api,
    ):
        token = await admin_token(api)
        key = await api_key(api, token)
        server = f"calc{secrets.token_hex(3)}"
        await register(api, token, server, url)
        gw = Gateways(e2e_stack, live[-2:], token, key, server)
        for replica in gw.replicas:
            await wait_listed(api, replica.url, key, gw.tool)
        yield gw
    if any(not r.alive() for r in gw.replicas):  # replace the replica the kill test crashed
        await e2e_stack.restart("gateway")


async def test_current_revision_requests_spread_over_both_replicas(gateways: Gateways) -> None:
    seen: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=gateways.stack.url, timeout=10) as api:
        for _ in range(20):
            resp = await call_tool(api, "", gateways.key, gateways.tool, {"text": "hi"})
            assert resp.status_code == 200, resp.text
            assert resp.json()["result"]["structuredContent"] == {"result": "hi"}
            seen[resp.headers[INSTANCE]] += 1
    assert set(seen) == {r.instance for r in gateways.replicas}
    assert min(seen.values()) >= 5  # round-robin, not one replica with a stray request


async def test_a_legacy_session_initialised_on_one_replica_is_served_by_the_other(
    gateways: Gateways,
) -> None:
    first, second = gateways.replicas
    init = initialize("e2e-legacy", version="2025-06-18")
    headers = {**bearer(gateways.key), "Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=10) as http:
        opened = await http.post(f"{first.url}/mcp", json=init, headers=headers)
        session = {**headers, "Mcp-Session-Id": opened.headers["mcp-session-id"]}
        call = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": gateways.tool, "arguments": {"text": "elsewhere"}},
        }
        served = await http.post(f"{second.url}/mcp", json=call, headers=session)
        ended = await http.delete(f"{second.url}/mcp", headers=session)
        async with asyncio.timeout(2):  # the end travels over core NATS: within milliseconds
            while (
                after := await http.post(f"{first.url}/mcp", json=call, headers=session)
            ).status_code == 200:
                await asyncio.sleep(0.01)
    assert opened.status_code == 200 and opened.headers[INSTANCE] == first.instance
    assert served.status_code == 200, served.text
    assert served.headers[INSTANCE] == second.instance
    assert served.json()["result"]["structuredContent"] == {"result": "elsewhere"}
    assert ended.status_code == 204
    assert after.status_code == 404  # ended on the other replica, refused here too
    assert after.json()["error"]["code"] == -32004


async def test_a_registry_change_reaches_both_replicas_within_one_second(
    gateways: Gateways,
) -> None:
    name = f"late{secrets.token_hex(3)}"
    async with (
        run_upstream(calculator(name)) as url,
        httpx.AsyncClient(base_url=gateways.stack.url, timeout=10) as api,
    ):
        await register(api, gateways.token, name, url)  # answers after discovery is stored
        changed = time.monotonic()
        delays = []
        for replica in gateways.replicas:
            async with asyncio.timeout(5):  # measured below; the timeout only bounds a failure
                while f"{name}__add" not in tool_names(
                    await list_tools(api, replica.url, gateways.key)
                ):
                    await asyncio.sleep(0.02)
            delays.append(time.monotonic() - changed)
        resp = await api.delete(f"/api/v1/servers/{name}", headers=bearer(gateways.token))
        assert resp.status_code == 204, resp.text
    assert max(delays) < 1.0, delays


async def test_killing_a_replica_mid_load_loses_no_audit_record_of_a_completed_call(
    gateways: Gateways,
) -> None:
    victim = gateways.replicas[0]
    succeeded: dict[str, str] = {}  # trace id → replica that answered
    failures = 0
    killed_at: list[int] = []  # successes when the replica was killed
    stop = asyncio.Event()

    async def worker(api: httpx.AsyncClient) -> None:
        nonlocal failures
        while not stop.is_set():
            trace = secrets.token_hex(16)  # the audit record carries the W3C trace id
            text = trace[:8]
            try:
                resp = await call_tool(
                    api,
                    "",
                    gateways.key,
                    gateways.tool,
                    {"text": text},
                    {"traceparent": f"00-{trace}-{secrets.token_hex(8)}-01"},
                )
            except httpx.TransportError:
                failures += 1
                continue
            body = resp.json() if resp.status_code == 200 else {}
            if body.get("result", {}).get("structuredContent") == {"result": text}:
                succeeded[trace] = resp.headers[INSTANCE]
            else:
                failures += 1
            if len(succeeded) >= 60 and not killed_at:
                killed_at.append(len(succeeded))
                victim.kill()
            if killed_at and len(succeeded) >= killed_at[0] + 60:
                stop.set()

    async with (
        asyncio.timeout(60),
        httpx.AsyncClient(base_url=gateways.stack.url, timeout=10) as api,
    ):
        await asyncio.gather(*(worker(api) for _ in range(8)))
    by_victim = sum(1 for who in succeeded.values() if who == victim.instance)
    assert by_victim > 0  # the killed replica did complete calls before it died

    missing = await _unaudited(gateways, set(succeeded))
    assert not missing, (
        f"{len(missing)} of {len(succeeded)} completed calls have no audit record "
        f"({failures} failed), e.g. {sorted(missing)[:3]}"
    )


async def _unaudited(gateways: Gateways, traces: set[str], wait_s: float = 15) -> set[str]:
    """The trace ids without an `ok` audit record once the audit service caught up (or wait_s)."""
    conn = await asyncpg.connect(gateways.stack.admin_database_url)
    missing = traces
    try:
        async with asyncio.timeout(wait_s):
            while missing:
                rows = await conn.fetch(
                    "SELECT trace_id FROM audit.tool_calls"
                    " WHERE server = $1 AND tool = 'echo' AND status = 'ok'",
                    gateways.server,
                )
                missing = traces - {r["trace_id"] for r in rows}
                await asyncio.sleep(0.1)
    except TimeoutError:
        pass
    finally:
        await conn.close()
    return missing
