"""The legacy-SSE transport benchmark still runs against the gateway's current modules."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_legacy_sse_benchmark_runs_both_transports_without_errors() -> None:
    env = {**os.environ, "BENCH_ROUNDS": "1", "BENCH_DURATION_S": "0.3", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.legacy_sse"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = [line for line in done.stdout.splitlines() if line.startswith("round 0")]
    assert len(runs) == 4, done.stdout  # two transports × two concurrencies
    assert all(line.endswith("errors 0") for line in runs), done.stdout
