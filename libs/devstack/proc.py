"""Process, user and package helpers shared by the devstack modules."""

import ctypes
import ctypes.util
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[2]
UNPRIVILEGED_USER = "nobody"
PR_SET_PDEATHSIG = 1


def run_dir(root: Path = ROOT) -> Path:
    """Return the checkout's `.run` directory (created, and ignored by git)."""
    path = root / ".run"
    (path / "logs").mkdir(parents=True, exist_ok=True)
    ignore = path / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return path


def is_root() -> bool:
    """Tell whether this process runs as root."""
    return os.geteuid() == 0


def as_unprivileged(argv: list[str]) -> list[str]:
    """Wrap argv so it runs as an unprivileged user when we are root (initdb refuses root)."""
    if not is_root():
        return argv
    return ["runuser", "-u", UNPRIVILEGED_USER, "--", *argv]


def give_to_unprivileged(*paths: Path) -> None:
    """Make paths owned by the unprivileged user when we are root."""
    if not is_root():
        return
    entry = pwd.getpwnam(UNPRIVILEGED_USER)
    for path in paths:
        os.chown(path, entry.pw_uid, entry.pw_gid)


def unprivileged_can_write(path: Path) -> bool:
    """Tell whether the unprivileged user can create files inside directory path."""
    if not is_root():
        return os.access(path, os.W_OK | os.X_OK)
    probe = path / f".probe-{os.getpid()}"
    result = subprocess.run(
        as_unprivileged(["sh", "-c", f'touch "{probe}" && rm -f "{probe}"']),
        capture_output=True,
    )
    return result.returncode == 0


def unprivileged_dir(name: str, root: Path = ROOT) -> Path:
    """Return .run/<name> owned by the unprivileged user (a /tmp dir when it cannot reach .run)."""
    base = run_dir(root) / name
    base.mkdir(parents=True, exist_ok=True)
    give_to_unprivileged(base)
    if unprivileged_can_write(base):
        return base
    # The repo lives where the unprivileged user cannot reach (e.g. under /root): use /tmp.
    digest = hashlib.sha1(str(root).encode()).hexdigest()[:8]
    fallback = Path(tempfile.gettempdir()) / f"switchboard-{digest}-{name}"
    fallback.mkdir(mode=0o700, exist_ok=True)
    give_to_unprivileged(fallback)
    return fallback


def apt_install(*packages: str) -> None:
    """Install Debian packages with apt-get (as root, or through sudo)."""
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"Please install {' '.join(packages)} (no apt-get on this machine).")
    prefix: list[str] = [] if is_root() else ["sudo", "-n"]
    if prefix and shutil.which("sudo") is None:
        raise RuntimeError(f"Please install {' '.join(packages)} (run: apt-get install -y ...).")
    print(f"devstack: installing {' '.join(packages)} with apt-get", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        [*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        check=True,
        env=env,
    )


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies, so a crash leaves no orphans."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def spawn(
    argv: list[str],
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    unprivileged: bool = False,
) -> subprocess.Popen[bytes]:
    """Start argv in its own process group with stdout and stderr appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log: IO[bytes] = open(log_path, "ab")
    user: dict[str, object] = {}
    if unprivileged and is_root():
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
        give_to_unprivileged(log_path)
        user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
            **user,  # type: ignore[arg-type]
        )
    finally:
        log.close()


def stop_group(
    proc: subprocess.Popen[bytes], timeout: float = 5.0, sig: int = signal.SIGTERM
) -> int:
    """Signal proc's process group, wait up to timeout, then SIGKILL; return the exit code."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
    return proc.wait()


def kill_group(proc: subprocess.Popen[bytes]) -> int:
    """SIGKILL proc's process group and reap it; return the exit code."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return proc.wait()


def pid_alive(pid: int) -> bool:
    """Tell whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait_pid_gone(pid: int, timeout: float) -> bool:
    """Wait until pid no longer exists; return False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def tail(path: Path, lines: int = 20) -> str:
    """Return the last lines of a text file (empty when missing)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
