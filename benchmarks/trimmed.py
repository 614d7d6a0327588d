"""The trimmed benchmark (`BENCH_MODE=trimmed make bench`): the gateway and little else.

Auth and registry run in one process, the gateway runs with LOG_LEVEL=error and no audit
service consumes its records; the default, whole-stack mode is benchmarks/stack.py."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from typing import Any

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from benchmarks import load, profiling
from benchmarks.load import body, bracketed, drive, drive_once, headers, wait_http
from benchmarks.processes import cpu_s, listener_pid, rss_mb, self_cpu_s, with_children
from libs.devstack import nats as devnats
from libs.devstack import postgres, proc
from libs.devstack.harness import free_port
from libs.devstack.nginx import Nginx

PY = sys.executable
SERVERS = int(os.environ.get("BENCH_SERVERS", "100"))
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "1000"))
PROFILE_CONC = int(profiling.PROFILE_CONC or "32")


async def measured(
    pid: int, url: str, payload: bytes, hdrs: dict, conc: int, others: dict[str, list[int]]
) -> dict[str, Any]:
    """drive(), plus the CPU microseconds per call of process `pid` and of `others`."""
    watched = {"main": [pid], **others}
    before = {k: sum(cpu_s(p) for p in pids) for k, pids in watched.items()}
    gen_before = self_cpu_s()
    result: dict[str, Any] = await drive(url, payload, hdrs, conc)
    calls = max(result["calls"], 1)
    spent = {k: sum(cpu_s(p) for p in pids) - before[k] for k, pids in watched.items()}
    result["cpu_us"] = spent.pop("main") * 1e6 / calls
    result["others_us"] = {k: v * 1e6 / calls for k, v in spent.items()}
    result["others_us"]["loadgen"] = (self_cpu_s() - gen_before) * 1e6 / calls
    return result


# the gateway's own split of a call's time (sum / count of its histograms): name, and labels to
# match (series with more labels, such as each error_type's, are summed)
SPLIT = {
    "upstream": (
        "mcp_client_operation_duration_seconds",
        {"mcp_method_name": "tools/call", "server": "s000"},
    ),
    "in-gateway": ("switchboard_gateway_added_duration_seconds", {"mcp_method_name": "tools/call"}),
    "audit ack": ("switchboard_gateway_audit_publish_seconds", {}),
}


async def split_totals(metrics_url: str) -> dict[str, tuple[float, float]]:
    """(sum, count) of each SPLIT histogram on the gateway now."""
    async with aiohttp.ClientSession() as http, http.get(metrics_url) as resp:
        text = await resp.text()
    totals = {k: [0.0, 0.0] for k in SPLIT}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            for k, (name, labels) in SPLIT.items():
                suffix = sample.name.removeprefix(name)
                if suffix in ("_sum", "_count") and labels.items() <= sample.labels.items():
                    totals[k][suffix == "_count"] += sample.value
    return {k: (total, count) for k, (total, count) in totals.items()}


def split_means(before: dict, after: dict) -> dict[str, float]:
    """Mean milliseconds per observation of each SPLIT histogram between two readings."""
    out = {}
    for k in SPLIT:
        total, count = (after[k][i] - before[k][i] for i in (0, 1))
        out[k] = total * 1000 / count if count else 0.0
    return out


def remove_nginx(nginx: Nginx) -> None:
    """Stop the benchmark's nginx and delete its prefix directory and (access) log."""
    nginx.stop()
    if nginx.prefix is not None:
        shutil.rmtree(nginx.prefix, ignore_errors=True)
    if nginx.log_dir is not None:
        shutil.rmtree(nginx.log_dir, ignore_errors=True)


async def main() -> None:
    """Start upstream, auth + registry, gateway; measure; print."""
    load.ensure_loadgen()
    pg = await postgres.ensure_postgres("pg-bench")
    pg_url = await postgres.create_database(pg.url, f"sbbench_{secrets.token_hex(3)}")
    nats_url = devnats.ensure_nats("nats-bench").url
    namespace = f"b{secrets.token_hex(4)}"
    up_port, gw_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}/mcp"
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "LOG_LEVEL": "warning"}
    procs = [subprocess.Popen([PY, "-m", "benchmarks.upstream", str(up_port)], env=env)]
    stops: list = []
    try:
        await wait_http(f"http://127.0.0.1:{up_port}/")
        platform = subprocess.Popen(
            [PY, "-m", "benchmarks.platform", pg_url, nats_url, namespace, upstream, str(SERVERS)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(platform)
        assert platform.stdout is not None
        token = ""
        while not token:
            line = await asyncio.to_thread(platform.stdout.readline)
            if not line:
                raise RuntimeError("the platform process exited")
            if line.startswith("TOKEN "):
                token = line.split()[1]
        gw_env = {
            **env,
            "DATABASE_URL": pg_url,
            "NATS_URL": nats_url,
            "SWITCHBOARD_NAMESPACE": namespace,
            "GATEWAY_PORT": str(gw_port),
            "GATEWAY_LIST_PAGE_SIZE": "10000",
            "LOG_LEVEL": "error",
        }
        gateway = subprocess.Popen([PY, "-m", "services.gateway"], env=gw_env)
        procs.append(gateway)
        gw = f"http://127.0.0.1:{gw_port}/mcp"
        await wait_http(f"http://127.0.0.1:{gw_port}/healthz")
        nginx = Nginx(
            port=free_port(),
            name=f"nginx-{namespace}",
            upstreams={"gateway": [f"127.0.0.1:{gw_port}"]},
            log_dir=proc.run_dir() / "logs" / f"bench-{namespace}",
        )
        assert nginx.log_dir is not None
        nginx.log_dir.mkdir(parents=True, exist_ok=True)
        nginx.start()
        stops.append(lambda: remove_nginx(nginx))
        via_nginx = f"{nginx.url}/mcp"
        call = body("tools/call", {"name": "echo", "arguments": {"text": "hi"}})
        gw_call = body("tools/call", {"name": "s000__echo", "arguments": {"text": "hi"}})
        async with asyncio.timeout(60):
            while True:
                r = await drive_once(gw, body("tools/list", {}), headers("tools/list", None, token))
                got = len(r.get("result", {}).get("tools", []))
                if got >= SERVERS * 50:
                    break
                print(f"waiting for the routing table: {got} tools", r.get("error"), flush=True)
                await asyncio.sleep(0.5)
        rows = []
        gw_hdrs = headers("tools/call", "s000__echo", token)
        up_hdrs = headers("tools/call", "echo", None)
        up_pid, gw_pid = procs[0].pid, gateway.pid
        assert nginx.process is not None
        nats_pid = listener_pid(nats_url)
        chain = {"upstream": [up_pid], "nginx": with_children(nginx.process.pid)}
        if nats_pid is not None:
            chain["nats"] = [nats_pid]
        metrics_url = gw.replace("/mcp", "/metrics")
        drift: list[tuple[int, float, float]] = []
        for conc in (1, 32):
            before = await measured(up_pid, upstream, call, up_hdrs, conc, {})
            mark = await split_totals(metrics_url)
            through = await measured(gw_pid, gw, gw_call, gw_hdrs, conc, chain)
            through["split"] = split_means(mark, mark := await split_totals(metrics_url))
            # BENCH_PROFILE=out.txt: the gateway during the nginx run at BENCH_PROFILE_CONC (32)
            spy = None
            if profiling.PROFILE and conc == PROFILE_CONC:
                spy = profiling.record(gw_pid, profiling.PROFILE)
            nginxed = await measured(gw_pid, via_nginx, gw_call, gw_hdrs, conc, chain)
            nginxed["split"] = split_means(mark, await split_totals(metrics_url))
            if spy is not None:
                spy.wait()
            after = await measured(up_pid, upstream, call, up_hdrs, conc, {})
            drift.append((conc, before["p50"], after["p50"]))
            rows.append((conc, bracketed(before, after), through, nginxed))
        list_hdrs = headers("tools/list", None, token)
        listing = await drive(gw, body("tools/list", {}), list_hdrs, 1)
        list_nginx = await drive(via_nginx, body("tools/list", {}), list_hdrs, 1)
        rss = rss_mb(gateway.pid)
        print(
            "\nTRIMMED stack (BENCH_MODE=trimmed): the gateway alone with LOG_LEVEL=error, no audit"
            " consumer, auth + registry in one process\n"
            f"tools/call, {load.DURATION_S:g}s per run, upstream = official SDK stateless JSON, "
            f"load generator = {load.LOADGEN}"
        )
        print("gw = gateway port directly; nginx = through nginx + gateway (the deployed path)")
        print(
            f"{'conc':>4} {'path':>6} {'calls/s':>8} {'ratio':>6} {'p50':>7} {'added':>7}"
            f" {'p99':>7} {'errors':>6} {'cpu/call':>9}"
        )
        for conc, d, g, n in rows:
            for label, r in (("direct", d), ("gw", g), ("nginx", n)):
                print(
                    f"{conc:>4} {label:>6} {r['calls_s']:>8.0f} "
                    f"{r['calls_s'] / d['calls_s']:>6.2f} {r['p50']:>7.2f} "
                    f"{r['p50'] - d['p50']:>+7.2f} {r['p99']:>7.2f} {int(r['errors']):>6} "
                    f"{r['cpu_us']:>7.0f}us"
                )
        print("cpu/call: CPU time of the upstream (direct) or of the gateway (gw, nginx) per call")
        print(
            "direct = the mean of a direct run before and one after the gw and nginx runs "
            "(the machine's speed drifts): p50 "
            + ", ".join(f"c={c} {a:.2f} / {b:.2f} ms" for c, a, b in drift)
        )
        print("mean time per call inside the gateway (ms), from its own histograms:")
        for conc, _, g, n in rows:
            for label, r in (("gw", g), ("nginx", n)):
                shown = "  ".join(f"{k} {v:.2f}" for k, v in r["split"].items())
                print(f"{conc:>4} {label:>6}  {shown}")
        print("CPU per call of every process on the path (us):")
        for conc, d, _, n in rows:
            for label, r in (("direct", d), ("nginx", n)):
                parts = (
                    {"gateway": r["cpu_us"], **r["others_us"]}
                    if label == "nginx"
                    else {"upstream": r["cpu_us"], **r["others_us"]}
                )
                total = sum(parts.values())
                shown = "  ".join(f"{k} {v:.0f}" for k, v in parts.items())
                print(f"{conc:>4} {label:>6}  {shown}  total {total:.0f}")
        for label, r in (("gw", listing), ("nginx", list_nginx)):
            print(
                f"tools/list of {SERVERS * 50} tools ({label}): p50 {r['p50']:.1f} ms, "
                f"p99 {r['p99']:.1f} ms, {r['calls_s']:.0f}/s"
            )
        print(f"gateway RSS after the load: {rss:.0f} MB")
        opened, rss_open = await open_sessions(gw, token, SESSIONS, gateway.pid)
        print(
            f"gateway RSS with {SERVERS * 50} tools and {SESSIONS} open legacy sessions "
            f"(initialised + GET stream each; sessions gauge {opened}): {rss_open:.0f} MB"
        )
    finally:
        for stop in stops:
            stop()
        for child in reversed(procs):
            child.terminate()
        for child in procs:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        await postgres.drop_database(pg.url, pg_url.rsplit("/", 1)[1])


async def open_sessions(url: str, token: str, count: int, pid: int) -> tuple[int, float]:
    """Initialise `count` legacy sessions and hold a GET stream open on each; return how many."""
    init = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        }
    )
    auth = {"Authorization": f"Bearer {token}"}
    post = {**auth, "Content-Type": "application/json", "Accept": "application/json"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        ids = []
        for _ in range(count):
            async with http.post(url, data=init, headers=post) as resp:
                await resp.read()
                ids.append(resp.headers["Mcp-Session-Id"])
        streams = []
        for sid in ids:
            hdrs = {**auth, "Accept": "text/event-stream", "Mcp-Session-Id": sid}
            resp = await http.get(url, headers=hdrs)
            assert resp.status == 200, resp.status
            streams.append(resp)
        metrics = await (await http.get(url.replace("/mcp", "/metrics"))).text()
        line = next(
            (x for x in metrics.splitlines() if x.startswith("switchboard_gateway_sessions_open")),
            "",
        )
        opened = int(float(line.split()[-1])) if line else 0
        return opened, rss_mb(pid)  # read while every stream is still open


if __name__ == "__main__":
    asyncio.run(main())
