"""The benchmarks still run against the current modules (tiny settings; figures unchecked)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def run_module(
    module: str, timeout: float, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`python -m module *args` from the checkout, with `env` added to the environment."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_legacy_sse_benchmark_runs_both_transports_without_errors() -> None:
    done = run_module("benchmarks.legacy_sse", 120, BENCH_ROUNDS="1", BENCH_DURATION_S="0.3")
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [line for line in done.stdout.splitlines() if line.startswith("round 0")]
    assert len(runs) == 4, done.stdout  # two transports × two concurrencies
    assert all(line.endswith("errors 0") for line in runs), done.stdout


def test_the_trimmed_bench_runs_end_to_end_on_a_tiny_setting() -> None:
    done = run_module(
        "benchmarks",
        300,
        BENCH_MODE="trimmed",
        BENCH_SERVERS="2",
        BENCH_DURATION_S="0.5",
        BENCH_SESSIONS="5",
        BENCH_LOADGEN="aiohttp",  # wrk may not be installed; its figures are not the point
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "TRIMMED stack (BENCH_MODE=trimmed)" in done.stdout, done.stdout
    rows = [line.split() for line in done.stdout.splitlines()]
    paths = ("gw", "nginx")
    runs = [r for r in rows if len(r) > 7 and r[1] in paths and r[2].isdigit()]
    assert len(runs) == 4, done.stdout
    assert all(r[7] == "0" for r in runs), done.stdout  # the errors column


def test_the_audit_writes_benchmark_waits_for_every_record_and_reports_its_cpu() -> None:
    done = run_module("benchmarks.audit_writes", 120, "200", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("run 1: consumer "), done.stdout
    assert "median: consumer " in done.stdout
