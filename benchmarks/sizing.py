"""The sizing model: cores per service at 1k, 10k and 100k calls/s, from measured CPU per call.

`BENCH_JSON=run1.json make bench` (three times) and `BENCH_JSON=js.json python -m
benchmarks.jetstream`, then `python -m benchmarks.sizing run*.json js.json` prints the tables of
docs/PERFORMANCE.md's "Sizing" section. A service's figure is its CPU per call through nginx at
the highest concurrency the bench ran (the regime a busy deployment runs in), the worse of the two
protocol generations, the median over the files given. NATS's is the 3-node R3 cluster's of
benchmarks/jetstream.py when given (the whole-stack bench shares the machine's NATS server with
other work), else the whole-stack figure on each of three nodes.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RATES = (1_000, 10_000, 100_000)
# Plan every process at this share of its cores: bursts, a lost replica or node, GC pauses.
TARGET_UTILISATION = 0.6
# The platform's Python services: one asyncio process per replica uses at most one core.
PYTHON_SERVICES = ("gateway", "audit", "auth", "registry", "sandbox")
SHARED_SERVERS = ("nginx", "nats", "postgres")
UPSTREAM = "upstream"  # the bench's echo server (official Python SDK): the operator's, not ours
# A JetStream stream is one Raft group: every publish to it goes through its leader. Assumed:
# one core of the leader's is what one stream gets (its appends are ordered, so one at a time).
STREAM_LEADER_CORES = 1.0
NATS_NODES = 3  # a 3-node cluster with R3 streams: every node stores every message
POSTGRES_PRIMARY_CORES = 16  # an assumed primary: the write ceiling before partitioning
DAY_S = 86_400
RETENTION_DAYS = 90  # AUDIT_RETENTION_DAYS' default


@dataclass(frozen=True)
class PerCall:
    """Median CPU microseconds per call of each process group, and bytes per stored call."""

    cpu_us: dict[str, float]
    storage: dict[str, float]
    files: int
    # CPU us per call record of each node of a 3-node R3 cluster, the stream leader's first
    nats_nodes_us: tuple[float, ...] = ()

    @property
    def nats_measured(self) -> bool:
        """Whether the NATS figures come from benchmarks/jetstream.py's cluster."""
        return bool(self.nats_nodes_us)

    @property
    def nats_us(self) -> tuple[float, ...]:
        """Each NATS node's CPU per call: measured, else the whole-stack figure on each node."""
        if self.nats_nodes_us:
            return self.nats_nodes_us
        one = self.cpu_us.get("nats", 0.0)
        return (one,) * NATS_NODES if one else ()


def worst_nginx_run(document: dict[str, Any]) -> dict[str, float]:
    """CPU us per call of each group through nginx at the top concurrency, worse generation.

    The audit's figure is per stored call (it may store a run's records after the run)."""
    runs = document["runs"]
    top = max(r["conc"] for r in runs)
    worst: dict[str, float] = {}
    for run in (r for r in runs if r["conc"] == top):
        path = run["nginx"]
        cpu = dict(path["cpu_us"])
        if path.get("stored"):
            cpu["audit"] = cpu.get("audit", 0.0) * path["calls"] / path["stored"]
        for group, us in cpu.items():
            worst[group] = max(worst.get(group, 0.0), us)
    return worst


def per_call(documents: list[dict[str, Any]]) -> PerCall:
    """The median over the bench documents of worst_nginx_run and of their storage figures.

    And the median over the JetStream documents of each node's figure in their R3 run."""
    stacks = [d for d in documents if d.get("kind") != "jetstream"]
    figures = [worst_nginx_run(d) for d in stacks]
    groups = sorted({g for f in figures for g in f})
    cpu = {g: statistics.median(f[g] for f in figures if g in f) for g in groups}
    stored = [d["storage"] for d in stacks if d.get("storage")]
    keys = sorted({k for s in stored for k in s})
    storage = {k: statistics.median(s[k] for s in stored if k in s) for k in keys}
    clusters = [
        list(r["node_us"].values())
        for d in documents
        if d.get("kind") == "jetstream"
        for r in d["runs"]
        if r["replicas"] == NATS_NODES
    ]
    width = NATS_NODES if clusters else 0
    nodes = tuple(statistics.median(c[i] for c in clusters) for i in range(width))
    return PerCall(cpu, storage, len(stacks), nodes)


def cores(us_per_call: float, rate: float) -> float:
    """Cores a process group needs at `rate` calls/s, planned at TARGET_UTILISATION."""
    return rate * us_per_call / 1e6 / TARGET_UTILISATION


def ceilings(model: PerCall) -> dict[str, float]:
    """Calls/s at which a part that does not scale by adding replicas reaches its target."""
    cpu = model.cpu_us
    found = {}
    if model.nats_us:
        found["one JetStream stream (its leader)"] = (
            STREAM_LEADER_CORES * TARGET_UTILISATION * 1e6 / model.nats_us[0]
        )
    if cpu.get("postgres"):
        found[f"one Postgres primary ({POSTGRES_PRIMARY_CORES} cores)"] = (
            POSTGRES_PRIMARY_CORES * TARGET_UTILISATION * 1e6 / cpu["postgres"]
        )
    if cpu.get(UPSTREAM):
        found["one upstream process (the bench's Python SDK echo, 1 core)"] = (
            TARGET_UTILISATION * 1e6 / cpu[UPSTREAM]
        )
    return found


def saturated_first(model: PerCall, rate: float) -> list[str]:
    """The parts whose ceiling lies below `rate`, lowest ceiling first."""
    return [name for name, at in sorted(ceilings(model).items(), key=lambda x: x[1]) if at < rate]


def fmt(value: float) -> str:
    """A figure with as many digits as it deserves."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def service_table(model: PerCall) -> list[str]:
    """Markdown: us per call, calls/s per core, cores (replicas) at each rate."""
    head = "| process | CPU us/call | calls/s per core |" + "".join(
        f" cores (replicas) at {r // 1000}k/s |" for r in RATES
    )
    lines = [head, "|---" * (3 + len(RATES)) + "|"]
    rows = [(g, model.cpu_us.get(g, 0.0)) for g in (*PYTHON_SERVICES, *SHARED_SERVERS, UPSTREAM)]
    platform_us, platform_cores = 0.0, [0.0] * len(RATES)
    for group, us in rows:
        if group == "nats":
            us = sum(model.nats_us)
        if not us:
            continue
        needs = [cores(us, rate) for rate in RATES]
        cells = [
            f" {fmt(need)} ({math.ceil(need)}) |" if group in PYTHON_SERVICES else f" {fmt(need)} |"
            for need in needs
        ]
        lines.append(f"| {label(group, model)} | {us:.0f} | {1e6 / us:,.0f} |" + "".join(cells))
        if group != UPSTREAM:
            platform_us += us
            platform_cores = [t + n for t, n in zip(platform_cores, needs, strict=True)]
    lines.append(
        f"| platform (all but the upstream) | {platform_us:.0f} | {1e6 / platform_us:,.0f} |"
        + "".join(f" {fmt(c)} |" for c in platform_cores)
    )
    return lines


def label(group: str, model: PerCall) -> str:
    """A row's name: NATS says which cluster and where its figure comes from."""
    if group != "nats":
        return group
    source = "benchmarks/jetstream.py" if model.nats_measured else "the whole-stack figure x3"
    return f"nats, {NATS_NODES} nodes, R{NATS_NODES} ({source})"


def storage_lines(model: PerCall) -> list[str]:
    """Markdown: Postgres rows, bytes and WAL per second and per day at each rate."""
    s = model.storage
    if not s.get("record_bytes"):
        return ["(no storage figures in these files: run the bench with this checkout's stack.py)"]
    per_call = s["record_bytes"] + s.get("processed_event_bytes", 0.0)
    lines = [
        f"Per call: 1 record of {s['record_bytes']:.0f} B with its indexes"
        f" ({s.get('record_heap_bytes', 0):.0f} B heap), 1 processed-event id of"
        f" {s.get('processed_event_bytes', 0):.0f} B, 1 per-minute rollup upsert;"
        f" WAL at most {s.get('wal_bytes_upper_bound', 0):,.0f} B (the shared server's).",
        "",
        "| calls/s | rows/s | table growth/day | kept (90 days) | WAL/s (upper bound) |",
        "|---|---|---|---|---|",
    ]
    for rate in RATES:
        day = rate * per_call * DAY_S
        wal = rate * s.get("wal_bytes_upper_bound", 0.0)
        lines.append(
            f"| {rate:,} | {2 * rate:,} | {day / 1e9:,.1f} GB"
            f" | {day * RETENTION_DAYS / 1e12:,.1f} TB"
            f" | {wal / 1e6:,.1f} MB/s |"
        )
    return lines


def report(model: PerCall) -> str:
    """Every table of the Sizing section."""
    nodes = ", ".join(f"{us:.0f}" for us in model.nats_us)
    out = [
        f"Median of {model.files} bench file(s); CPU per call through nginx at the top"
        f" concurrency, the worse generation; planned at {TARGET_UTILISATION:.0%} of each core."
        f" NATS nodes (stream leader first): {nodes} us per call record"
        + (
            f"; the whole-stack run's NATS server (shared) showed {model.cpu_us['nats']:.0f}."
            if model.nats_measured and model.cpu_us.get("nats")
            else "."
        ),
        "",
        *service_table(model),
        "",
        *storage_lines(model),
        "",
        "| part that does not scale by replicas | calls/s at its planned ceiling |",
        "|---|---|",
        *(f"| {name} | {fmt(at)} |" for name, at in ceilings(model).items()),
        "",
    ]
    for rate in RATES:
        first = saturated_first(model, rate)
        out.append(f"- {rate:,} calls/s: " + (", then ".join(first) if first else "nothing"))
    return "\n".join(out)


def main(argv: list[str]) -> int:
    """Print the model of the bench files named on the command line."""
    if not argv:
        print("usage: python -m benchmarks.sizing BENCH_JSON_FILE...", file=sys.stderr)
        return 2
    documents = [json.loads(Path(p).read_text()) for p in argv]
    print(report(per_call(documents)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
