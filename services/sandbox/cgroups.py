"""cgroup v2 limits per sandbox (memory.max, pids.max), where the host delegates a cgroup to us.

Detected once per process: the service's own cgroup (from /proc/self/cgroup, on the cgroup2
mount in /proc/self/mountinfo) must offer the memory and pids controllers and be writable. The
service then moves itself into a `service` leaf (cgroup v2 lets only leaves hold processes
once controllers are enabled below), enables the controllers for `sandboxes/`, and gives each
sandbox a cgroup of its own there. A sandbox enters its cgroup before it drops privileges
(`enter_prefix`), and the cgroup is killed and removed when the sandbox ends. Anything less
(cgroup v1, no delegation, other processes sharing our cgroup) is reported, never forced.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hashlib
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger()

CONTROLLERS = ("memory", "pids")
STALE_S = 60.0
REMOVE_TRIES = 30  # about 1.2 s in all for killed processes to leave


@dataclass(frozen=True)
class CgroupSupport:
    """Whether sandboxes get cgroup limits here, and where their cgroups live."""

    base: Path | None
    reason: str | None = None

    @property
    def memory(self) -> bool:
        """memory.max per sandbox."""
        return self.base is not None

    @property
    def pids(self) -> bool:
        """pids.max per sandbox."""
        return self.base is not None

    def to_dict(self, detailed: bool) -> dict[str, object]:
        """JSON form (the host path only for platform admins)."""
        out: dict[str, object] = {"memory": self.memory, "pids": self.pids, "reason": self.reason}
        if detailed:
            out["base"] = str(self.base) if self.base else None
        return out


def cgroup2_mount(mountinfo: str) -> str | None:
    """The mount point of the cgroup2 hierarchy in a /proc/self/mountinfo text."""
    for line in mountinfo.splitlines():
        fields, _, rest = line.partition(" - ")
        if rest.split(" ", 1)[0] == "cgroup2":
            return fields.split(" ")[4]
    return None


def own_cgroup(proc_cgroup: str) -> str | None:
    """Our path in the cgroup2 hierarchy from a /proc/self/cgroup text (`0::/path`)."""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def _read(path: Path | str) -> str:
    """A small kernel file's text ('' when unreadable)."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _enable(cgroup: Path) -> None:
    """Enable the controllers for the children of `cgroup`."""
    (cgroup / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in CONTROLLERS))


@functools.cache
def detect(setting: str = "auto") -> CgroupSupport:
    """Find and prepare the delegated cgroup (once per process), or say why there is none."""
    if setting == "off":
        return CgroupSupport(None, "disabled by SANDBOX_CGROUPS=off")
    mount = cgroup2_mount(_read("/proc/self/mountinfo"))
    path = own_cgroup(_read("/proc/self/cgroup"))
    if mount is None or path is None:
        return CgroupSupport(None, "no cgroup v2 hierarchy (a cgroup v1 or hybrid host)")
    current = Path(mount) / path.lstrip("/")
    offered = _read(current / "cgroup.controllers").split()
    lacking = [c for c in CONTROLLERS if c not in offered]
    if lacking:
        missing = " and ".join(lacking)
        return CgroupSupport(
            None,
            f"the service's cgroup v2 ({path}) offers no {missing} controller: a cgroup v1 or"
            " hybrid host, or a cgroup not delegated to the service",
        )
    if not os.access(current / "cgroup.subtree_control", os.W_OK):
        return CgroupSupport(None, f"the service's cgroup {path} is not writable")
    try:
        _make_leaf(current)
        base = current / "sandboxes"
        base.mkdir(exist_ok=True)
        _enable(base)
    except OSError as exc:
        return CgroupSupport(None, f"the service's cgroup {path} cannot be delegated: {exc}")
    for stale in base.iterdir():  # left by a killed run (a fresh one may be another replica's)
        with contextlib.suppress(OSError):
            if stale.is_dir() and time.time() - stale.stat().st_mtime > STALE_S:
                stale.rmdir()  # fails while processes are inside
    return CgroupSupport(base)


def _make_leaf(current: Path) -> None:
    """Move this process into `current/service` and enable the controllers below `current`."""
    try:
        _enable(current)
        return
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
    others = set(_read(current / "cgroup.procs").split()) - {str(os.getpid())}
    if others:
        raise OSError(errno.EBUSY, f"it holds other processes ({len(others)})")
    leaf = current / "service"
    leaf.mkdir(exist_ok=True)
    (leaf / "cgroup.procs").write_text(str(os.getpid()))
    _enable(current)


def create(support: CgroupSupport, key: str, memory_mb: int, nproc: int) -> Path | None:
    """A fresh cgroup for one sandbox with its memory and pids limits (None: none here)."""
    if support.base is None:
        return None
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    path = support.base / f"sb-{digest}-{uuid.uuid4().hex[:8]}"
    try:
        path.mkdir()
        (path / "memory.max").write_text(str(memory_mb * 1024 * 1024))
        with contextlib.suppress(FileNotFoundError):  # no swap accounting on this kernel
            (path / "memory.swap.max").write_text("0")
        (path / "pids.max").write_text(str(nproc))
    except OSError as exc:
        log.warning("sandbox_cgroup_not_created", key=key, error=str(exc))
        with contextlib.suppress(OSError):
            path.rmdir()
        return None
    return path


def enter_prefix(cgroup: Path | None) -> list[str]:
    """The argv that moves the command into its cgroup before anything else runs.

    The move is made as the service."""
    if cgroup is None:
        return []
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup / "cgroup.procs")]


async def remove(cgroup: Path | None) -> None:
    """Kill whatever is left in a sandbox's cgroup and remove it."""
    if cgroup is None:
        return
    try:
        (cgroup / "cgroup.kill").write_text("1")
    except OSError:  # before Linux 5.14: one by one
        for pid in _read(cgroup / "cgroup.procs").split():
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
    delay = 0.001
    for _ in range(REMOVE_TRIES):  # killed processes leave the cgroup within milliseconds
        try:
            cgroup.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
    log.warning("sandbox_cgroup_not_removed", cgroup=str(cgroup))
