"""The whole-stack benchmark's tables: every process's CPU per call first, then issue 17's."""

from __future__ import annotations

from typing import Any

from benchmarks import load
from benchmarks.rest import GENERATIONS

PATHS = ("direct", "gw", "nginx")
NAME_W, CELL_W, GAP = 24, 7, "  "
NOT_COUNTED = "other databases"  # a shared Postgres's other backends: shown, not summed


def label(run: dict[str, Any]) -> str:
    """`stateless c=1`, `session c=32`."""
    return f"{GENERATIONS[run['revision']]} c={run['conc']}"


def cell(value: float | None, fmt: str = "{:.0f}") -> str:
    """One right-aligned figure, `-` when there is none."""
    return f"{'-' if value is None else fmt.format(value):>{CELL_W}}"


def line(name: str, cells: list[str]) -> str:
    """A row: the name, then the cells in groups of three (one group per run)."""
    groups = [" ".join(cells[i : i + 3]) for i in range(0, len(cells), 3)]
    return f"{name:<{NAME_W}}" + GAP.join(groups)


def derived(r: dict[str, Any], rows: list[str]) -> dict[str, float | None]:
    """The sums and ratios below the per-process rows, for one path of one run."""
    cpu = r["cpu_us"]
    total = sum(cpu.get(k, 0.0) for k in rows)
    stored = r.get("stored")
    audit = cpu.get("audit", 0.0)
    return {
        "all of the above": total,
        "all minus upstream": total - cpu.get("upstream", 0.0),
        "whole box minus upstream": r["box_us"] - cpu.get("upstream", 0.0),
        "audit per stored call": audit * r["calls"] / stored if stored else None,
        "records stored per call": stored / r["served"] if r.get("served") else None,
    }


def print_cpu(runs: list[dict[str, Any]], groups: list[str], shared: list[str]) -> None:
    """CPU microseconds per call of every process on the path, one column per run and path."""
    rows = [g for g in groups if g != NOT_COUNTED] + ["loadgen"]
    print("CPU per call of every process on the path (us; user + system, from /proc):")
    print(line("", [f"{label(r):^{3 * CELL_W + 2}}" for r in runs]).rstrip())
    print(line("process", [f"{p:>{CELL_W}}" for _ in runs for p in PATHS]))
    for name in rows:
        shown = f"{name} (shared)" if name in shared else name
        print(line(shown, [cell(r[p]["cpu_us"].get(name)) for r in runs for p in PATHS]))
    for name in derived(runs[0]["gw"], rows):
        fmt = "{:.2f}" if name == "records stored per call" else "{:.0f}"
        values = [derived(r[p], rows)[name] for r in runs for p in PATHS]
        print(line(name, [cell(v, fmt) for v in values]))
    if NOT_COUNTED in groups:
        values = [r[p]["cpu_us"].get(NOT_COUNTED) for r in runs for p in PATHS]
        print(line("postgres, other dbs", [cell(v) for v in values]) + "  (not counted)")


def issue_measures(r: dict[str, Any], rows: list[str]) -> list[tuple[str, str, float | None]]:
    """Issue 17's measures of one run, through nginx unless named: (name, format, value)."""
    nginx, direct = derived(r["nginx"], rows), derived(r["direct"], rows)
    us = "{:.0f}"
    return [
        ("gateway CPU/call us (<=500)", us, r["nginx"]["cpu_us"]["gateway"]),
        ("audit CPU/stored call us (<=300)", us, nginx["audit per stored call"]),
        ("NATS CPU/call us (<=200)", us, r["nginx"]["cpu_us"].get("nats")),
        ("box minus upstream us (<=1500)", us, nginx["whole box minus upstream"]),
        ("  the same, direct", us, direct["whole box minus upstream"]),
        ("path minus upstream us", us, nginx["all minus upstream"]),
        ("  the same, direct", us, direct["all minus upstream"]),
        (
            "calls/s vs direct (>=0.8, c=32)",
            "{:.2f}",
            r["nginx"]["calls_s"] / r["direct"]["calls_s"],
        ),
        ("added p50 ms (<=+1.0, c=1)", "{:+.2f}", r["nginx"]["p50"] - r["direct"]["p50"]),
    ]


def print_issue(runs: list[dict[str, Any]], groups: list[str]) -> None:
    """Issue 17's measures from the nginx runs, with their targets."""
    rows = [g for g in groups if g != NOT_COUNTED] + ["loadgen"]
    print("\nissue 17's measures (through nginx; target in brackets):")
    print(f"{'':<34}" + "".join(f"{label(r):>16}" for r in runs))
    table = [issue_measures(r, rows) for r in runs]
    for i, (name, fmt, _) in enumerate(table[0]):
        print(f"{name:<34}" + "".join(f"{cell(m[i][2], fmt):>16}" for m in table))


def print_calls(runs: list[dict[str, Any]]) -> None:
    """calls/s, latency and errors of every run."""
    print(
        f"\n{'run':<14} {'path':>6} {'calls/s':>8} {'ratio':>6} {'p50':>7} {'added':>7}"
        f" {'p99':>7} {'errors':>6} {'stored/call':>11}"
    )
    for r in runs:
        d = r["direct"]
        for path in PATHS:
            x = r[path]
            stored = f"{x['stored'] / x['served']:.2f}" if x.get("served") else "-"
            print(
                f"{label(r):<14} {path:>6} {x['calls_s']:>8.0f} {x['calls_s'] / d['calls_s']:>6.2f}"
                f" {x['p50']:>7.2f} {x['p50'] - d['p50']:>+7.2f} {x['p99']:>7.2f}"
                f" {int(x['errors']):>6} {stored:>11}"
            )
    print(
        "direct = the mean of a direct run before and one after the gw and nginx runs: p50 "
        + ", ".join(f"{label(r)} {r['drift'][0]:.2f} / {r['drift'][1]:.2f} ms" for r in runs)
    )


def print_whole(
    runs: list[dict[str, Any]], groups: list[str], shared: list[str], servers: int
) -> None:
    """Every table of the whole-stack mode."""
    print(
        "\nWHOLE STACK, started by make run's code: auth, registry, gateway, sandbox and audit as\n"
        "`python -m services.<name>` (default settings and log level; the audit consumer stores\n"
        "every call in Postgres), nginx in front. tools/call of echo with an API key,"
        f" {load.DURATION_S:g} s per run,\n{servers} servers x 50 tools registered through the"
        f" REST API, load generator {load.LOADGEN}.\n"
        "stateless = 2026-07-28 (version and client in every request); session = 2025-11-25\n"
        "(initialized once per run, then every call names its Mcp-Session-Id).\n"
        "direct = the upstream alone; gw = the gateway's own port; nginx = through nginx.\n"
    )
    print_cpu(runs, groups, shared)
    print_issue(runs, groups)
    print_calls(runs)
