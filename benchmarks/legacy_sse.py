"""tools/call through the gateway to a legacy HTTP+SSE upstream: hand-written vs SDK transport.

`python -m benchmarks.legacy_sse` starts the official Python SDK's SSE server (the benchmark's
50-tool upstream, `sse_app`, uvicorn) in a process of its own, then, in this process, the
gateway's core (routing table, upstream pool, `Gateway.handle`: resolve, limits, forward, size
check) with the upstream registered as `transport: sse`, and drives `tools/call` of `echo` from
C concurrent callers for BENCH_DURATION_S seconds per run. Each round runs both transports, in
alternating order (ABBA), each on a fresh pool and session: `hand` is
services/gateway/upstreams/legacy_sse.py, `sdk` is benchmarks/sdk_sse_upstream.py (`sse_client`). It
prints calls/s, p50 and p99 (ms), and this process's CPU per call (gateway plus the callers,
which cost the same for both), per run and as medians.

Environment: BENCH_DURATION_S (5), BENCH_ROUNDS (3), BENCH_CONCURRENCY ("1,16").
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings

from benchmarks.upstream import build
from libs.common import wire
from libs.common.authn import Principal
from libs.common.rpc_types import ServerView
from services.gateway.call_context import CallContext
from services.gateway.protocol import Gateway
from services.gateway.routing_table import RoutingTable
from services.gateway.settings import GatewaySettings
from services.gateway.upstreams import legacy_sse
from services.gateway.upstreams import pool as pool_module
from services.gateway.upstreams.pool import UpstreamPool

DURATION_S = float(os.environ.get("BENCH_DURATION_S", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "1,16").split(",")]
ADMIN = Principal(kind="user", id="u-bench", name="bench", platform_role="platform_admin")
LOCAL = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["127.0.0.1:*"],
    allowed_origins=["http://127.0.0.1:*"],
)
HAND = legacy_sse.SseUpstream


def serve(port: int) -> None:
    """The upstream: the official SDK's HTTP+SSE server."""
    app = build().sse_app(transport_security=LOCAL)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        loop="uvloop",
        http="httptools",
        access_log=False,
    )


def free_port() -> int:
    """A port nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def listening(port: int) -> None:
    """Wait until the upstream accepts connections."""
    async with asyncio.timeout(60):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.1)


async def core(url: str, variant: str) -> tuple[Gateway, UpstreamPool]:
    """The gateway's core with one `transport: sse` server, on the given transport."""
    settings = GatewaySettings.from_env(
        {"GATEWAY_SSRF_ALLOWLIST": "127.0.0.1/32", "GATEWAY_GC_FREEZE": "false"}
    )
    table = RoutingTable(settings.separator)
    tools = [{"name": "echo", "input_schema": {"type": "object"}}]
    view = {"id": "s1", "name": "old", "transport": "sse", "url": url, "tools": tools}
    table.replace([wire.decode(ServerView, view)])
    pool = UpstreamPool(settings, None)
    await pool.start()
    if variant == "sdk":
        from benchmarks.sdk_sse_upstream import SdkSseUpstream

        def make(server: Any, http: Any, limit: int) -> Any:
            return SdkSseUpstream(server, http, limit, pool.guard)

        pool_module.SseUpstream = make  # type: ignore[assignment,misc]
    else:
        pool_module.SseUpstream = HAND  # type: ignore[misc]
    return Gateway(settings, table, pool, None), pool


async def drive(gateway: Gateway, concurrency: int) -> dict[str, float]:
    """`tools/call` from `concurrency` callers for DURATION_S; calls/s, p50, p99, CPU µs/call."""
    params = {"name": "old__echo", "arguments": {"text": "hello"}}
    latencies: list[float] = []
    errors = 0

    async def one() -> None:
        nonlocal errors
        t0 = time.perf_counter()
        result = await gateway.handle("tools/call", params, CallContext(ADMIN))
        latencies.append((time.perf_counter() - t0) * 1000)
        if result.get("isError") or result["content"][0]["text"] != "hello":
            errors += 1

    for _ in range(20):  # warm up (and connect)
        await one()
    latencies.clear()
    deadline = time.perf_counter() + DURATION_S

    async def caller() -> None:
        while time.perf_counter() < deadline:
            await one()

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    latencies.sort()
    return {
        "calls_s": len(latencies) / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[max(int(len(latencies) * 0.99) - 1, 0)],
        "cpu_us": cpu * 1e6 / len(latencies),
        "errors": errors,
    }


async def main() -> None:
    """Start the upstream; alternate the transports; print every run and the medians."""
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.legacy_sse", "serve", str(port)]
    upstream = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": os.getcwd()})
    url = f"http://127.0.0.1:{port}/sse"
    try:
        await listening(port)
        runs: dict[tuple[str, int], list[dict[str, float]]] = {}
        for rnd in range(ROUNDS):
            order = ["hand", "sdk"] if rnd % 2 == 0 else ["sdk", "hand"]
            for variant in order:
                gateway, pool = await core(url, variant)
                try:
                    for conc in CONCURRENCY:
                        result = await drive(gateway, conc)
                        runs.setdefault((variant, conc), []).append(result)
                        print(
                            f"round {rnd} {variant:4} c={conc:<3} {result['calls_s']:7.0f} calls/s"
                            f"  p50 {result['p50']:6.2f} ms  p99 {result['p99']:6.2f} ms"
                            f"  cpu {result['cpu_us']:5.0f} µs/call  errors {result['errors']}",
                            flush=True,
                        )
                finally:
                    await pool.close()
        print("\nmedians of the runs")
        for (variant, conc), results in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            med = {k: statistics.median(r[k] for r in results) for k in results[0]}
            print(
                f"{variant:4} c={conc:<3} {med['calls_s']:7.0f} calls/s  p50 {med['p50']:6.2f} ms"
                f"  p99 {med['p99']:6.2f} ms  cpu {med['cpu_us']:5.0f} µs/call"
            )
    finally:
        upstream.terminate()
        upstream.wait()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(int(sys.argv[2]))
    else:
        asyncio.run(main())
