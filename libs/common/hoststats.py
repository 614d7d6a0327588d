"""CPU and memory of the machine a replica runs on, read from /proc (Linux), for heartbeats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROC = Path("/proc")


def _cpu_times(proc: Path) -> tuple[int, int] | None:
    """(busy, total) jiffies from the `cpu` line of /proc/stat, or None when unreadable."""
    try:
        first = (proc / "stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    values = [int(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def memory(proc: Path = PROC) -> dict[str, float] | None:
    """Used and total MiB and the used percentage (MemTotal − MemAvailable), None when unknown."""
    try:
        lines = (proc / "meminfo").read_text().splitlines()
    except OSError:
        return None
    kib = {}
    for line in lines:
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            kib[name] = int(parts[0])
    total, avail = kib.get("MemTotal"), kib.get("MemAvailable")
    if not total or avail is None:
        return None
    used = total - avail
    return {
        "memory_used_mb": round(used / 1024, 1),
        "memory_total_mb": round(total / 1024, 1),
        "memory_percent": round(100 * used / total, 1),
    }


class CpuMeter:
    """The machine's CPU use between two readings (the first reading answers since boot)."""

    def __init__(self, proc: Path = PROC) -> None:
        """Read from `proc` (a test passes a fake /proc)."""
        self._proc = proc
        self._last: tuple[int, int] | None = None

    def percent(self) -> float | None:
        """Busy share of all CPUs since the previous call, in percent; None when unreadable."""
        now = _cpu_times(self._proc)
        if now is None:
            return None
        busy0, total0 = self._last or (0, 0)
        self._last = now
        span = now[1] - total0
        return round(100 * (now[0] - busy0) / span, 1) if span > 0 else 0.0


def snapshot(meter: CpuMeter, proc: Path = PROC) -> dict[str, Any]:
    """`cpu_percent` and the memory figures, each left out when unknown."""
    out: dict[str, Any] = {}
    cpu = meter.percent()
    if cpu is not None:
        out["cpu_percent"] = cpu
    out.update(memory(proc) or {})
    return out
