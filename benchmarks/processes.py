"""CPU time and memory of the processes on a benchmark's path, read from /proc."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass

TICK_S = 1 / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    """One process in a /proc scan: its parent and the CPU seconds it has used."""

    ppid: int
    cpu_s: float


# picks a group's pids out of one /proc scan (the group's processes may come and go)
Selector = Callable[[dict[int, Proc]], Iterable[int]]
Snapshot = dict[str, dict[int, float]]  # group → pid → CPU seconds


def stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (contention-independent cost measure)."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) * TICK_S


def scan() -> dict[int, Proc]:
    """Every process now: pid → parent and CPU seconds."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = stat_fields(entry)
            except (OSError, IndexError):
                continue  # gone meanwhile
            table[int(entry)] = Proc(int(fields[1]), (int(fields[11]) + int(fields[12])) * TICK_S)
    return table


def listener_pid(url: str) -> int | None:
    """The pid of the process listening on `url`'s port (for its CPU figure), if `ss` tells."""
    port = url.rsplit(":", 1)[-1].split("/")[0]
    try:
        out = subprocess.run(
            ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return None
    found = re.search(r"pid=(\d+)", out)
    return int(found.group(1)) if found else None


def with_children(pid: int) -> list[int]:
    """`pid` and its direct children (nginx's master and workers)."""
    return [pid, *(p for p, info in scan().items() if info.ppid == pid)]


def tree(*roots: int) -> Selector:
    """The roots and all their descendants."""

    def select(table: dict[int, Proc]) -> set[int]:
        found = {r for r in roots if r in table}
        grew = True
        while grew:
            kids = {p for p, info in table.items() if info.ppid in found and p not in found}
            found |= kids
            grew = bool(kids)
        return found

    return select


def title(pid: int) -> str:
    """A process's command line as one string (Postgres puts its process title there)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def backend_database(pid: int) -> str | None:
    """The database a Postgres backend serves, from its title; None for the server's own."""
    # a backend: "postgres: <user> <database> <host>(<port>) <state>" or "... [local] ..."
    words = title(pid).split()
    if len(words) >= 4 and words[0] == "postgres:" and ("(" in words[3] or words[3] == "[local]"):
        return words[2]
    return None


def postgres_of(postmaster: int, database: str, mine: bool = True) -> Selector:
    """The postmaster and its children that serve `database` or the whole server (mine).

    With mine=False: the backends of the other databases (a shared machine Postgres serves other
    work at the same time)."""

    def select(table: dict[int, Proc]) -> list[int]:
        kids = [p for p, info in table.items() if info.ppid == postmaster]
        ours = [p for p in kids if backend_database(p) in (database, None)]
        if mine:
            return [postmaster, *ours] if postmaster in table else ours
        return [p for p in kids if p not in ours]

    return select


def snapshot(groups: dict[str, Selector]) -> Snapshot:
    """The CPU seconds of each group's processes now (one /proc scan)."""
    table = scan()
    return {
        name: {p: table[p].cpu_s for p in pick(table) if p in table}
        for name, pick in groups.items()
    }


def spent(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """CPU seconds each group spent between two snapshots.

    A process that appeared meanwhile counts whole; one that exited meanwhile is lost (its
    last seconds are not readable any more)."""
    return {
        name: sum(cpu - before.get(name, {}).get(pid, 0.0) for pid, cpu in now.items())
        for name, now in after.items()
    }


def box_busy_s() -> float:
    """CPU seconds every core of the machine has spent busy (/proc/stat; steal excluded)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) * TICK_S


def self_cpu_s() -> float:
    """CPU seconds of this process and its waited-for children: the load generator."""
    usage = os.times()
    return usage.user + usage.system + usage.children_user + usage.children_system


def rss_mb(pid: int) -> float:
    """Resident memory of a process."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
