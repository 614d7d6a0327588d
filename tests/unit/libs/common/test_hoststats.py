"""hoststats: memory from /proc/meminfo, CPU share between two /proc/stat readings."""

from __future__ import annotations

from pathlib import Path

from libs.common import hoststats


def fake_proc(tmp: Path, busy: int, idle: int) -> Path:
    """A /proc with a meminfo and a cpu line of `busy` user and `idle` idle jiffies."""
    (tmp / "stat").write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 0 0 1\n")
    (tmp / "meminfo").write_text("MemTotal:       8192000 kB\nMemAvailable:   6144000 kB\n")
    return tmp


def test_memory_is_total_minus_available_in_mebibytes(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, 0, 0)
    assert hoststats.memory(proc) == {
        "memory_used_mb": 2000.0,
        "memory_total_mb": 8000.0,
        "memory_percent": 25.0,
    }


def test_cpu_percent_is_the_busy_share_between_two_readings(tmp_path: Path) -> None:
    meter = hoststats.CpuMeter(fake_proc(tmp_path, 100, 300))
    assert meter.percent() == 25.0
    fake_proc(tmp_path, 190, 310)  # 90 busy of 100 more
    assert meter.percent() == 90.0


def test_an_unreadable_proc_leaves_the_figures_out(tmp_path: Path) -> None:
    meter = hoststats.CpuMeter(tmp_path)
    assert hoststats.snapshot(meter, tmp_path) == {}
