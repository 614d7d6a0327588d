"""The benchmarks' requests and load generators (wrk, or an aiohttp client in this process)."""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import time
from typing import Any

import aiohttp
import orjson

from libs.devstack import proc

MODERN = "2026-07-28"  # stateless: every request carries its protocol version and client
SESSION_REVISION = "2025-11-25"  # initialize once, then requests name the Mcp-Session-Id
CLIENT_INFO = {"name": "bench", "version": "1"}
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
}
DURATION_S = float(os.environ.get("BENCH_DURATION_S", "5"))
# BENCH_LOADGEN: wrk (default when installed; `make bench` installs it) or aiohttp
LOADGEN = os.environ.get("BENCH_LOADGEN", "wrk")
WRK_SCRIPT = os.path.join(os.path.dirname(__file__), "wrk.lua")


def body(method: str, params: dict[str, Any], revision: str = MODERN) -> bytes:
    """A request of `revision` (the stateless one carries its `_meta`)."""
    if revision == MODERN:
        params = {**params, "_meta": META}
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def headers(
    method: str, name: str | None, token: str | None, revision: str = MODERN
) -> dict[str, str]:
    """Headers of a request of `revision` (routing headers for the stateless one) and credential."""
    out = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": revision,
    }
    if revision == MODERN:
        out["Mcp-Method"] = method
        if name:
            out["Mcp-Name"] = name
    if token:
        out["Authorization"] = f"Bearer {token}"
    return out


async def drive(url: str, payload: bytes, hdrs: dict, concurrency: int) -> dict[str, float]:
    """POST `payload` from `concurrency` connections for DURATION_S.

    Returns calls (completed), calls/s, p50 and p99 (ms) and errors."""
    if LOADGEN == "wrk":
        return await drive_wrk(url, payload, hdrs, concurrency)
    return await drive_aiohttp(url, payload, hdrs, concurrency)


async def drive_wrk(url: str, payload: bytes, hdrs: dict, concurrency: int) -> dict[str, float]:
    """drive() with wrk (C, one thread): the load generator takes little of the shared CPU."""
    env = {
        **os.environ,
        "BENCH_WRK_BODY": payload.decode(),
        "BENCH_WRK_HEADERS": "\n".join(f"{k}: {v}" for k, v in hdrs.items()),
    }
    argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{DURATION_S:g}s", "--timeout", "10s"]
    child = await asyncio.create_subprocess_exec(
        *argv, "-s", WRK_SCRIPT, url, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await child.communicate()
    last = out.decode().strip().splitlines()[-1:] or [""]
    if child.returncode != 0 or not last[0].startswith("{"):
        raise RuntimeError(f"wrk failed: {err.decode()[-500:]} {out.decode()[-500:]}")
    totals = orjson.loads(last[0])
    return {
        "calls": totals["requests"],
        "calls_s": totals["requests"] / (totals["duration_us"] / 1e6),
        "p50": totals["p50_us"] / 1000,
        "p99": totals["p99_us"] / 1000,
        "errors": totals["errors"],
    }


async def drive_aiohttp(url: str, payload: bytes, hdrs: dict, concurrency: int) -> dict[str, float]:
    """drive() with an aiohttp client in this process (costs ~5x wrk's CPU per call)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + DURATION_S
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                async with http.post(url, data=payload, headers=hdrs) as resp:
                    data = await resp.read()
                if resp.status != 200 or b'"error"' in data[:200]:
                    errors += 1
                latencies.append((time.perf_counter() - t0) * 1000)

        for _ in range(3):  # warm up
            async with http.post(url, data=payload, headers=hdrs) as resp:
                await resp.read()
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "calls": len(latencies),
        "calls_s": len(latencies) / elapsed,
        "p50": statistics.median(latencies),
        "p99": latencies[max(int(len(latencies) * 0.99) - 1, 0)],
        "errors": errors,
    }


async def drive_once(url: str, payload: bytes, hdrs: dict) -> dict:
    """One request, parsed."""
    async with aiohttp.ClientSession() as http, http.post(url, data=payload, headers=hdrs) as r:
        return orjson.loads(await r.read())


async def wait_http(url: str) -> None:
    """Wait until something answers on `url`."""
    async with asyncio.timeout(60), aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as resp:
                    await resp.read()
                    return
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)


def ensure_loadgen() -> None:
    """Install wrk when it is asked for and missing (else fall back to the aiohttp client)."""
    global LOADGEN
    if LOADGEN != "wrk" or shutil.which("wrk"):
        return
    try:
        proc.apt_install("wrk")
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"wrk is not available ({exc}); using the aiohttp load generator", flush=True)
        LOADGEN = "aiohttp"


def bracketed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Two direct runs combined into one: the mean of each figure (errors added up).

    One run goes before and one after the runs they are compared with, so a machine that speeds
    up or slows down meanwhile biases nothing."""
    merged: dict[str, Any] = {}
    for key, value in before.items():
        other = after.get(key)
        if key == "errors":
            merged[key] = value + (other or 0)
        elif isinstance(value, dict):
            merged[key] = bracketed(value, other or {})
        elif isinstance(value, int | float):
            merged[key] = (value + (other or 0)) / 2
        else:
            merged[key] = value
    return merged
