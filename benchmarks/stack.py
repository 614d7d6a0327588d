"""The whole-stack benchmark (`make bench`): the platform as `make run` starts it, under load.

Postgres, NATS, the five `python -m services.<name>` processes and nginx come from the functions
`python -m libs.devstack run` uses (a database and a NATS namespace of the benchmark's own); the
upstream is registered and an API key made through nginx as the admin; then tools/call runs of both
protocol generations, direct, at the gateway's port and through nginx, and every process's CPU.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import nats as nats_client

from benchmarks import load, profiling, report, rest
from benchmarks.load import MODERN, SESSION_REVISION, body, bracketed, wait_http
from benchmarks.processes import Selector, listener_pid, postgres_of, tree
from benchmarks.runs import Watch, measured
from libs.devstack import launch, nats, pgroles, ports, postgres, proc
from libs.devstack.launch import AdminLogin
from libs.devstack.services import SERVICES
from libs.devstack.stack import Stack

SERVERS = int(os.environ.get("BENCH_SERVERS", "100"))
# BENCH_JSON=path: also write the runs as JSON there (what benchmarks/sizing.py reads)
JSON_PATH = os.environ.get("BENCH_JSON", "")
CONCURRENCY = (1, 32)
DATABASE_PREFIX = "sbbench_"


@dataclass
class Booted:
    """The running stack and what the benchmark reads underneath it."""

    stack: Stack
    admin: AdminLogin
    database: str
    database_url: str  # the admin's, on the stack's database
    postgres_url: str  # the server's
    nats: nats.Nats


@asynccontextmanager
async def whole_stack(space: str) -> AsyncIterator[Booted]:
    """Start the stack as `make run` does, in database sbbench_<space> and namespace `space`."""
    remove_old_logs()
    async with AsyncExitStack() as cleanup:  # undone in reverse order, whatever failed
        pg = await postgres.ensure_postgres("pg-bench")
        cleanup.callback(pg.stop)  # only when this run started it
        await pgroles.drop_orphan_roles(pg.url, DATABASE_PREFIX)  # of runs killed earlier
        database = f"{DATABASE_PREFIX}{space}"
        database_url = await postgres.create_database(pg.url, database)
        cleanup.push_async_callback(drop_database, pg.url, database)
        bus = nats.ensure_nats("nats-bench", auth=launch.nats_auth(space=space))
        cleanup.push_async_callback(release_nats, bus, space)
        kept = proc.run_dir() / "bench" / f"{space}-db-credentials.env"  # not make run's file
        kept.parent.mkdir(mode=0o700, exist_ok=True)
        cleanup.callback(kept.unlink, missing_ok=True)
        work_root = tempfile.mkdtemp(prefix="sbbench-sandbox-")  # not make run's .run/sandbox
        os.chmod(work_root, 0o711)
        cleanup.callback(shutil.rmtree, work_root, ignore_errors=True)
        credentials = await launch.service_credentials(
            database_url, bus.url, bus.auth, keep_in=kept
        )
        config, admin = launch.stack_config(
            database_url, bus.url, ports.free_port(), credentials=credentials, space=space
        )
        config.name = f"bench-{space}"
        config.log_dir = proc.run_dir() / "logs" / f"bench-{space}"
        config.env["SANDBOX_WORK_ROOT"] = work_root
        stack = Stack(config)
        cleanup.callback(stop_stack, stack)
        print(f"starting the stack (logs in {config.log_dir}/)", flush=True)
        await stack.start()
        yield Booted(stack, admin, database, database_url, pg.url, bus)


def stop_stack(stack: Stack) -> None:
    """Stop the services and nginx; remove nginx's prefix directory."""
    stack.stop()
    if stack.nginx.prefix is not None:
        shutil.rmtree(stack.nginx.prefix, ignore_errors=True)


async def drop_database(server_url: str, database: str) -> None:
    """Drop the benchmark's database and its service roles."""
    await postgres.drop_database(server_url, database)
    await pgroles.drop_roles(server_url, database)


async def release_nats(bus: nats.Nats, space: str) -> None:
    """Stop a NATS server this run started (and remove its store), else delete our streams."""
    if bus.started:
        bus.stop()
        shutil.rmtree(proc.run_dir() / "nats-bench", ignore_errors=True)
    else:
        await delete_streams(bus.url, space)


def remove_old_logs(max_age_s: float = 3600) -> None:
    """Delete the log directories of earlier runs (a run's access logs take tens of MB)."""
    for path in (proc.run_dir() / "logs").glob("bench-*"):
        if time.time() - path.stat().st_mtime > max_age_s:
            shutil.rmtree(path, ignore_errors=True)


async def delete_streams(url: str, space: str) -> None:
    """Delete the JetStream streams of namespace `space` on a shared NATS server."""
    client = await nats_client.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        jsm = client.jsm()
        for info in await jsm.streams_info():
            if space.lower() in (info.config.name or "").lower():
                await jsm.delete_stream(info.config.name)
    finally:
        await client.close()


def process_groups(booted: Booted, upstream: int) -> tuple[dict[str, Selector], list[str]]:
    """Each row's processes, and the rows that are servers shared with other work."""
    stack = booted.stack
    groups: dict[str, Selector] = {
        s: tree(*(r.process.pid for r in stack.replicas_of(s))) for s in SERVICES
    }
    shared = []
    if (nats_pid := listener_pid(booted.nats.url)) is not None:
        groups["nats"] = tree(nats_pid)
        if not booted.nats.started:
            shared.append("nats")
    assert stack.nginx.process is not None
    groups["nginx"] = tree(stack.nginx.process.pid)
    if (postmaster := listener_pid(booted.postgres_url)) is not None:
        groups["postgres"] = postgres_of(postmaster, booted.database)
        groups["other databases"] = postgres_of(postmaster, booted.database, mine=False)
    groups["upstream"] = tree(upstream)
    return groups, shared


async def run_all(booted: Booted, watch: Watch, upstream: str, key: str) -> list[dict[str, Any]]:
    """Both generations at each concurrency: direct, gateway port, nginx, direct again."""
    gateway = booted.stack.replicas_of("gateway")[0].url + "/mcp"
    via_nginx = f"{booted.stack.url}/mcp"
    runs = []
    async with aiohttp.ClientSession() as http:
        for revision in (MODERN, SESSION_REVISION):
            direct_call = body(
                "tools/call", {"name": "echo", "arguments": {"text": "hi"}}, revision
            )
            call = body("tools/call", {"name": "s000__echo", "arguments": {"text": "hi"}}, revision)
            direct_hdrs = rest.call_headers(revision, "echo", None, None)
            for conc in CONCURRENCY:
                row: dict[str, Any] = {"revision": revision, "conc": conc}
                before = await measured(watch, upstream, direct_call, direct_hdrs, conc, False)
                for path, url in (("gw", gateway), ("nginx", via_nginx)):
                    session = None
                    if revision == SESSION_REVISION:
                        session = await rest.open_session(http, url, key)
                    hdrs = rest.call_headers(revision, "s000__echo", key, session)
                    spy = profiled(booted, revision, conc, path)
                    row[path] = await measured(watch, url, call, hdrs, conc, True)
                    if spy is not None:
                        spy.wait()
                after = await measured(watch, upstream, direct_call, direct_hdrs, conc, False)
                row["direct"] = bracketed(before, after)
                row["drift"] = (before["p50"], after["p50"])
                runs.append(row)
    return runs


def profiled(booted: Booted, revision: str, conc: int, path: str) -> subprocess.Popen | None:
    """py-spy on the (first) gateway replica for this run, when BENCH_PROFILE asks for it.

    The stacks go to `<BENCH_PROFILE>-<stateless|session>-c<conc>-<path>.txt`."""
    if not profiling.wanted(conc, path):
        return None
    generation = "stateless" if revision == MODERN else "session"
    out = f"{profiling.PROFILE}-{generation}-c{conc}-{path}.txt"
    print(f"profiling the gateway into {out}", flush=True)
    return profiling.record(booted.stack.replicas_of("gateway")[0].process.pid, out)


async def storage_per_call(conn: asyncpg.Connection, wal_start: int) -> dict[str, float]:
    """Bytes per stored call: its record, its processed-event id, the WAL since `wal_start`.

    The record is given as heap alone and with its indexes and TOAST. The WAL is the whole
    server's: on a Postgres shared with other work it is an upper bound."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM audit.tool_calls) AS calls,"
        " pg_relation_size('audit.tool_calls') AS heap,"
        " pg_total_relation_size('audit.tool_calls') AS total,"
        " pg_total_relation_size('audit.processed_events') AS processed,"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn) AS wal",
        wal_start,
    )
    calls = max(int(row["calls"]), 1)
    return {
        "calls": float(row["calls"]),
        "record_heap_bytes": row["heap"] / calls,
        "record_bytes": row["total"] / calls,
        "processed_event_bytes": row["processed"] / calls,
        "wal_bytes_upper_bound": float(row["wal"]) / calls,
    }


def write_json(
    path: str,
    runs: list[dict[str, Any]],
    groups: list[str],
    shared: list[str],
    storage: dict[str, float],
) -> None:
    """Write a run's figures (every process's CPU per call, calls/s, latency) as JSON."""
    document = {
        "servers": SERVERS,
        "duration_s": load.DURATION_S,
        "loadgen": load.LOADGEN,
        "cores": os.cpu_count(),
        "groups": groups,
        "shared": shared,
        "storage": storage,
        "runs": runs,
    }
    with open(path, "w") as out:
        json.dump(document, out, indent=1)
    print(f"figures written to {path}", flush=True)


async def main() -> None:
    """Start the stack and the upstream, register, measure, print."""
    load.ensure_loadgen()
    space = f"b{secrets.token_hex(4)}"
    up_port = ports.free_port()
    upstream_url = f"http://127.0.0.1:{up_port}/mcp"
    argv = [sys.executable, "-m", "benchmarks.upstream", str(up_port)]
    upstream = subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(proc.ROOT)})
    try:
        await wait_http(f"http://127.0.0.1:{up_port}/")
        async with whole_stack(space) as booted, aiohttp.ClientSession() as http:
            base = booted.stack.url
            token, key = await rest.admin_key(http, base, booted.admin)
            names = [f"s{i:03d}" for i in range(SERVERS)]
            print(f"registering {SERVERS} servers through {base}", flush=True)
            started = time.monotonic()
            await rest.register(http, base, token, names, upstream_url)
            print(f"registered in {time.monotonic() - started:.1f} s", flush=True)
            await rest.wait_listed(http, f"{base}/mcp", key, SERVERS * rest.TOOLS_PER_SERVER)
            groups, shared = process_groups(booted, upstream.pid)
            metrics = [f"{r.url}/metrics" for r in booted.stack.replicas_of("gateway")]
            audit = await asyncpg.connect(booted.database_url)
            try:
                wal = await audit.fetchval("SELECT pg_current_wal_lsn()")
                runs = await run_all(booted, Watch(groups, audit, metrics), upstream_url, key)
                storage = await storage_per_call(audit, wal)
            finally:
                await audit.close()
            report.print_whole(runs, list(groups), shared, SERVERS)
            if JSON_PATH:
                write_json(JSON_PATH, runs, list(groups), shared, storage)
    finally:
        upstream.terminate()
        try:
            upstream.wait(10)
        except subprocess.TimeoutExpired:
            upstream.kill()
