"""Where the sandbox's host files live, so that every sandbox uid can reach them.

Run as root, the service gives each sandbox an unprivileged uid of its own, and bwrap (or the
fallback launcher) opens every bind source as that uid. A checkout in a directory others cannot
enter (a 0700 home, `mktemp -d`) then hides the service's packages, its `inside/` helpers, its
`.run/` work root and any `SANDBOX_RO_PATHS` below it. The layout finds what such a uid cannot
reach and puts it where it can:

- the default work root (`.run/sandbox`) moves to `/var/tmp/switchboard-sandbox-<hash>`; an
  explicit `SANDBOX_WORK_ROOT` is kept, and reported when unreachable;
- what sandboxes only read (packages, helpers, read-only paths) is staged under
  `<work root>/stage/<instance>/` as a tree of hard links (copies across file systems), and
  bound from there at the path the sandbox expects.

Not run as root, sandboxes run as the service's own uid and reach what the service reaches.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import structlog

from services.sandbox.settings import DEFAULT_WORK_ROOT, SandboxSettings

log = structlog.get_logger()

SUPPORT = Path(__file__).parent / "inside"
RELOCATED_PARENT = Path("/var/tmp")
TRAVERSE_MODE = 0o711  # sandbox uids pass through to their own dir and list nothing


@dataclass(frozen=True)
class Layout:
    """Host paths of the sandbox: its work root and what every sandbox reads."""

    work_root: Path
    support: Path  # inside/ helpers, bound at launchers.SUPPORT_DIR
    packages: Path | None  # the service's site-packages, bound at launchers.SITE_PACKAGES
    ro_paths: tuple[tuple[str, str], ...]  # (host source, path seen inside the sandbox)
    stage: Path | None  # this replica's staged copies (removed on close)
    notes: tuple[str, ...] = ()  # what was moved or staged, and why
    problems: tuple[str, ...] = ()  # what sandbox uids still cannot reach

    def remove_stage(self) -> None:
        """Delete this replica's staged copies."""
        if self.stage is not None:
            shutil.rmtree(self.stage, ignore_errors=True)


def drops_privileges() -> bool:
    """Whether sandboxes run as uids other than the service's (the service runs as root)."""
    return os.geteuid() == 0


def blocker(path: Path, read: bool = True) -> str | None:
    """Why an unprivileged uid cannot reach `path` (None when it can, or when it does not exist).

    Every directory on the way needs `x` for others; the path itself `r` when it is to be read
    (and `x` when it is a directory).
    """
    path = Path(os.path.abspath(path))
    chain = [*reversed(path.parents), path]
    for index, step in enumerate(chain):
        try:
            info = os.stat(step)
        except OSError:
            return None
        last = index == len(chain) - 1
        need = stat.S_IXOTH if not last else (stat.S_IROTH if read else 0)
        if last and stat.S_ISDIR(info.st_mode):
            need |= stat.S_IXOTH
        if info.st_mode & need != need:
            return (
                f"{step} is mode {stat.S_IMODE(info.st_mode):04o} (owner uid {info.st_uid}): "
                "other users cannot "
                + (
                    "read it"
                    if need & stat.S_IROTH and not info.st_mode & stat.S_IROTH
                    else "enter it"
                )
            )
    return None


def plan(settings: SandboxSettings, instance: str) -> Layout:
    """Decide the work root, stage what sandbox uids cannot reach, and say what was done."""
    notes: list[str] = []
    problems: list[str] = []
    work_root = _work_root(settings, notes, problems)
    ensure_dir(work_root)
    if not drops_privileges():
        packages = Path(settings.python_packages) if _is_dir(settings.python_packages) else None
        return Layout(work_root, SUPPORT, packages, tuple((p, p) for p in settings.ro_paths), None)
    stage = work_root / "stage" / _safe(instance)
    shutil.rmtree(stage, ignore_errors=True)
    support = _reachable(SUPPORT, stage / "support", notes)
    packages = None
    if _is_dir(settings.python_packages):
        packages = _reachable(Path(settings.python_packages), stage / "packages", notes)
    ro_paths = []
    for index, raw in enumerate(settings.ro_paths):
        if not os.path.exists(raw):
            continue
        source = _reachable(Path(raw), stage / f"ro-{index}", notes)
        ro_paths.append((str(source), raw))
    if (why := blocker(work_root, read=False)) is not None and not problems:
        problems.append(f"sandbox uids cannot reach the work root {work_root}: {why}")
    for path in (support, packages, *(Path(s) for s, _ in ro_paths)):
        if path is not None and (why := blocker(path)) is not None:
            problems.append(f"sandbox uids cannot read {path}: {why}")
    staged = stage if stage.exists() else None
    return Layout(
        work_root, support, packages, tuple(ro_paths), staged, tuple(notes), tuple(problems)
    )


def ensure_dir(path: Path, mode: int = TRAVERSE_MODE) -> None:
    """Create a directory of ours with `mode` (others may pass through, not list)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)


def _work_root(settings: SandboxSettings, notes: list[str], problems: list[str]) -> Path:
    """The configured work root, or the default moved where sandbox uids can reach it."""
    configured = Path(settings.work_root).resolve()
    if not drops_privileges():
        return configured
    why = blocker(configured, read=False)
    if why is None:
        return configured
    if settings.work_root != DEFAULT_WORK_ROOT:
        problems.append(f"SANDBOX_WORK_ROOT {configured} is out of the sandbox uids' reach: {why}")
        return configured
    moved = relocated_root(configured)
    _claim(moved)
    notes.append(f"work root {configured} moved to {moved}: {why}")
    return moved


def relocated_root(configured: Path | None = None) -> Path:
    """Where the default work root moves when out of reach: one directory per checkout.

    The default work root is `configured`, else `.run/sandbox` here. One directory per checkout,
    so restarts find their workspace (`make clean` drops it)."""
    configured = configured or Path(DEFAULT_WORK_ROOT).resolve()
    digest = hashlib.sha256(str(configured).encode()).hexdigest()[:12]
    parent = RELOCATED_PARENT if RELOCATED_PARENT.is_dir() else Path(tempfile.gettempdir())
    return parent / f"switchboard-sandbox-{digest}"


def _claim(path: Path) -> None:
    """Create `path` as our own directory; refuse one that someone else made (or a symlink)."""
    try:
        path.mkdir(mode=TRAVERSE_MODE)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise RuntimeError(f"{path} exists and is not a directory of this service's user")


def _reachable(source: Path, staged: Path, notes: list[str]) -> Path:
    """`source` when sandbox uids reach it, else a staged copy of it at `staged`."""
    why = blocker(source)
    if why is None:
        return source
    ensure_dir(staged.parent)
    _link_tree(source, staged)
    notes.append(f"{source} staged at {staged}: {why}")
    return staged


def _link_tree(source: Path, target: Path) -> None:
    """Copy a tree as hard links (a real copy across file systems), readable by others."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise
            shutil.copy2(src, dst, follow_symlinks=False)

    if source.is_dir():
        shutil.copytree(source, target, symlinks=True, copy_function=link)
        target.chmod(0o755)
    else:
        link(str(source), str(target))


def _is_dir(raw: str) -> bool:
    """Whether a configured path is an existing directory."""
    return bool(raw) and Path(raw).is_dir()


def _safe(name: str) -> str:
    """A file-name-safe form of an instance id."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100] or "_"
