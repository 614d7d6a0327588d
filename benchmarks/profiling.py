"""py-spy, when asked (BENCH_PROFILE) and installed: the gateway's stacks during chosen runs.

py-spy is a tool, not a project dependency: `.venv/bin/pip install py-spy` in the tree that
benchmarks. Its samples are raw folded stacks (one `frame;frame;… count` line per stack).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from benchmarks import load

# BENCH_PROFILE: where the stacks go (trimmed mode: that file; whole stack: a prefix, one file
# per profiled run); BENCH_PROFILE_CONC: the concurrency profiled (every one unless told);
# BENCH_PROFILE_PATH: gw or nginx (nginx unless told); BENCH_PROFILE_RATE: samples/s (250)
PROFILE = os.environ.get("BENCH_PROFILE", "")
PROFILE_CONC = os.environ.get("BENCH_PROFILE_CONC", "")
PROFILE_PATH = os.environ.get("BENCH_PROFILE_PATH", "nginx")
RATE = os.environ.get("BENCH_PROFILE_RATE", "250")


def wanted(conc: int, path: str) -> bool:
    """True when BENCH_PROFILE asks for the run at `conc` through `path`."""
    if not PROFILE or path != PROFILE_PATH:
        return False
    return not PROFILE_CONC or int(PROFILE_CONC) == conc


def spy_path() -> str | None:
    """The py-spy executable (the venv's, else on PATH), or None."""
    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    if os.path.exists(beside):
        return beside
    return shutil.which("py-spy")


def record(pid: int, out: str) -> subprocess.Popen | None:
    """py-spy sampling `pid` (and its subprocesses) for one run into `out`, if installed."""
    spy = spy_path()
    if spy is None:
        print("BENCH_PROFILE: py-spy is not installed; not profiling", flush=True)
        return None
    argv = [spy, "record", "-p", str(pid), "-r", RATE, "-f", "raw", "-o", out]
    return subprocess.Popen(
        [*argv, "-d", str(max(1, int(load.DURATION_S)))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
