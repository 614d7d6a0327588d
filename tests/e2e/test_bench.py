"""`make bench` (the whole stack) runs end to end: a tiny run, its tables checked, not figures."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import sizing

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = (
    "auth",
    "registry",
    "gateway",
    "sandbox",
    "audit",
    "nats",
    "nginx",
    "postgres",
    "upstream",
    "loadgen",
)
RUNS = ("stateless c=1", "stateless c=32", "session c=1", "session c=32")


def run_bench(json_path: Path) -> str:
    """`python -m benchmarks` on the whole stack with 1 s runs and one server; its output.

    Its figures also go to json_path (BENCH_JSON)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks"],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BENCH_DURATION_S": "1",
            "BENCH_SERVERS": "1",
            "BENCH_JSON": str(json_path),
            # never install anything from a test: wrk when the machine has it
            "BENCH_LOADGEN": "wrk" if shutil.which("wrk") else "aiohttp",
        },
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def cpu_rows(out: str) -> dict[str, list[str]]:
    """The CPU-per-call table's rows by process name (12 cells: 4 runs x direct, gw, nginx)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("process "))
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        name, cells = line[:24].strip(), line[24:].split()
        rows[name.removesuffix(" (shared)")] = cells
    return rows


def test_the_whole_stack_bench_prints_every_process_and_stores_every_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_bench(tmp_path / "bench.json")
    assert "WHOLE STACK" in out, out
    rows = cpu_rows(out)
    for name in PROCESSES:
        assert len(rows.get(name, [])) == 12, f"no CPU row of {name}:\n{out}"
    for name in ("gateway", "audit", "postgres"):  # busy in every run through the gateway
        through = [cell for i, cell in enumerate(rows[name]) if i % 3]
        assert all(float(cell) > 0 for cell in through), f"{name}: {rows[name]}\n{out}"
    stored = [cell for i, cell in enumerate(rows["records stored per call"]) if i % 3]
    assert stored == ["1.00"] * 8, out  # the audit consumer stored each call once
    calls = [line.split() for line in out.splitlines() if line.startswith(RUNS)]
    assert len(calls) == 12, out
    for cells in calls:
        path, per_s, errors = cells[2], float(cells[3]), cells[8]
        assert per_s > 0 and errors == "0", f"{path}: {cells}\n{out}"
    # the JSON feeds the sizing model: a row per service, storage per call from the audit's table
    assert sizing.main([str(tmp_path / "bench.json")]) == 0
    model = capsys.readouterr().out
    for name in ("gateway", "audit", "postgres"):
        assert f"| {name} |" in model, model
    assert "Per call: 1 record of" in model, model
