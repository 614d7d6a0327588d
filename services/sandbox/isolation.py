"""How a hosted process is confined: the tier this host offers, its limits, uid and spawning.

The command line of each tier is built in launchers.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from services.sandbox import seccomp
from services.sandbox.settings import SandboxSettings

BWRAP_USERNS = "bwrap-userns"
LANDLOCK_FALLBACK = "landlock-fallback"
NONE = "none"
GVISOR = "gvisor"  # reported when the service itself runs under gVisor (runsc); see detect_gvisor
# what gVisor's /proc/version says: its fixed fake kernel string, or (newer runsc) its own name
GVISOR_VERSION_MARKS = ("runsc", "gvisor", "#1 SMP Sun Jan 10 15:06:54 PST 2016")


log = structlog.get_logger()


@dataclass(frozen=True)
class Limits:
    """rlimits applied to every process of one sandbox."""

    memory_mb: int
    cpu_s: int
    nofile: int
    nproc: int
    fsize_mb: int

    def prlimit_args(self) -> list[str]:
        """`prlimit` options (soft CPU limit one second before the hard kill)."""
        cpu_soft = max(self.cpu_s - 1, 1)
        return [
            f"--as={self.memory_mb * 1024 * 1024}",
            f"--cpu={cpu_soft}:{self.cpu_s}",
            f"--nofile={self.nofile}",
            f"--nproc={self.nproc}",
            f"--fsize={self.fsize_mb * 1024 * 1024}",
            "--core=0",
        ]

    def to_dict(self) -> dict[str, int]:
        """JSON form."""
        return {
            "memory_mb": self.memory_mb,
            "cpu_s": self.cpu_s,
            "nofile": self.nofile,
            "nproc": self.nproc,
            "fsize_mb": self.fsize_mb,
        }


@dataclass
class Confinement:
    """What one sandboxed process gets: its work dir, extra read-only mounts, env and limits."""

    key: str
    workdir: Path
    limits: Limits
    env: dict[str, str] = field(default_factory=dict)
    ro_binds: list[tuple[str, str]] = field(default_factory=list)
    proxy_socket: Path | None = None
    # hosted servers get the service's packages (the MCP SDK); code tools only what they import
    service_packages: bool = True
    python_path: str = ""  # without the service's packages: the tool packages a code run imports
    cgroup: Path | None = None  # its own cgroup v2 (memory.max, pids.max), where delegated


@dataclass(frozen=True)
class Command:
    """argv to spawn (the drop to the host uid/gid included), the fds it inherits, its env."""

    argv: list[str]
    pass_fds: tuple[int, ...]
    uid: int | None
    gid: int | None
    env: dict[str, str]
    cwd: str | None = None


def landlock_abi(cap: int = 0) -> int:
    """The Landlock ABI version the fallback tier uses.

    The kernel's (0 when Landlock is unavailable), at most `cap` when one is set."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        abi = max(int(libc.syscall(444, None, 0, 1)), 0)
    except (OSError, AttributeError):
        return 0
    return min(abi, cap) if cap > 0 else abi


def _fallback(settings: SandboxSettings, why: str) -> tuple[str, str]:
    """Landlock + seccomp + rlimits + uid when the kernel has Landlock, else none."""
    abi = landlock_abi(settings.landlock_abi_max)
    no_seccomp = seccomp.unavailable_reason()
    if abi >= 1 and no_seccomp is None and settings.isolation != NONE:
        return LANDLOCK_FALLBACK, f"{why}; Landlock ABI {abi} + seccomp + rlimits instead"
    if abi >= 1 and no_seccomp is not None:
        return NONE, f"{why}; the Landlock fallback needs seccomp: {no_seccomp}"
    return NONE, why


def is_gvisor_version(text: str) -> bool:
    """True when a /proc/version text is the one gVisor's Sentry answers."""
    low = text.lower()
    return any(mark.lower() in low for mark in GVISOR_VERSION_MARKS)


def detect_gvisor(setting: str, proc_version: str) -> tuple[bool, str]:
    """Whether we run under gVisor: SANDBOX_GVISOR=true/false decides, auto reads /proc/version."""
    if setting in ("true", "1", "yes"):
        return True, "SANDBOX_GVISOR=true"
    if setting in ("false", "0", "no"):
        return False, ""
    if is_gvisor_version(proc_version):
        return True, f"/proc/version is gVisor's ({proc_version.strip()[:80]})"
    return False, ""


def read_proc_version(path: str = "/proc/version") -> str:
    """The kernel version text ('' when unreadable)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(4096)
    except OSError:
        return ""


def probe_tier(settings: SandboxSettings) -> tuple[str, str]:
    """The strongest tier that works here, with a reason when it is not bwrap-userns."""
    if settings.isolation == NONE:
        return NONE, "isolation disabled by SANDBOX_ISOLATION=none"
    if settings.isolation == LANDLOCK_FALLBACK:
        return _fallback(settings, "SANDBOX_ISOLATION=landlock-fallback")
    bwrap = shutil.which(settings.bwrap)
    if bwrap is None:
        return _fallback(settings, f"{settings.bwrap} not found (install Debian's bubblewrap)")
    try:
        probe = subprocess.run(
            [
                *identity_prefix(host_uid(settings, "probe")),
                bwrap,
                "--unshare-all",
                "--unshare-user",
                "--ro-bind",
                "/usr",
                "/usr",
                "--symlink",
                "usr/bin",
                "/bin",
                "--symlink",
                "usr/lib",
                "/lib",
                "--symlink",
                "usr/lib64",
                "/lib64",
                "/usr/bin/true",
            ],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return _fallback(settings, f"bwrap failed to run: {exc}")
    if probe.returncode != 0:
        reason = probe.stderr.decode(errors="replace").strip()[:200]
        return _fallback(settings, f"user namespaces unavailable: {reason}")
    return BWRAP_USERNS, ""


def host_uid(settings: SandboxSettings, key: str) -> int | None:
    """The unprivileged host uid of a sandbox (one per key), or None when not running as root."""
    if os.geteuid() != 0:
        return None
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")
    return settings.uid_base + digest % settings.uid_count


def identity_prefix(uid: int | None) -> list[str]:
    """The argv that drops to the sandbox's host uid and gid, with no supplementary groups.

    A command prefix rather than subprocess's user/group arguments, which uvloop (the services'
    event loop) refuses. Nothing when we are not root: sandboxes then run as our own uid.
    """
    if uid is None:
        return []
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]


async def spawn(cmd: Command, **stdio: Any) -> asyncio.subprocess.Process:
    """Start a built command in a session of its own; `stdio`: stdin/stdout/stderr/limit."""
    return await asyncio.create_subprocess_exec(
        *cmd.argv,
        pass_fds=cmd.pass_fds,
        start_new_session=True,
        env=cmd.env or {},
        cwd=cmd.cwd,
        **stdio,
    )


async def communicate(
    proc: asyncio.subprocess.Process, data: bytes, limit: int
) -> tuple[bytes, bytes]:
    """Feed stdin and read stdout/stderr (each kept up to `limit` bytes) until the process ends.

    A process that exits before reading its input (bwrap refusing a mount) is not an error
    here: its exit status and stderr say what happened. (uvloop raises RuntimeError on a write
    to a closed pipe, where asyncio's own communicate() would swallow BrokenPipeError.)
    """

    async def feed() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(data)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            pass
        finally:
            with contextlib.suppress(Exception):
                proc.stdin.close()

    async def read(stream: asyncio.StreamReader | None) -> bytes:
        kept = bytearray()
        while stream is not None and (chunk := await stream.read(65536)):
            if len(kept) < limit:
                kept += chunk[: limit - len(kept)]
        return bytes(kept)

    _, out, err = await asyncio.gather(feed(), read(proc.stdout), read(proc.stderr))
    await proc.wait()
    return out, err


def proxy_socket(directory: Path, key: str) -> Path:
    """Where the egress proxy listens for one sandbox: a short name, whatever the key's length.

    A Unix socket's path must fit in 107 bytes; server names and user ids are long."""
    return directory / f".px-{hashlib.sha256(key.encode()).hexdigest()[:16]}.sock"


def prepare_dir(path: Path, uid: int | None, mode: int = 0o700) -> None:
    """Create a directory owned by the sandbox uid (others cannot enter it)."""
    path.mkdir(parents=True, exist_ok=True)
    if uid is not None:
        os.chown(path, uid, uid)
    path.chmod(mode)
