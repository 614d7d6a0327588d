"""Find or start a Postgres server and create throwaway databases on it."""

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from libs.devstack import ports, proc

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Postgres:
    """A reachable Postgres server; data_dir is set when we started it ourselves."""

    url: str
    data_dir: Path | None = None
    bin_dir: Path | None = None

    @property
    def started(self) -> bool:
        """Tell whether this process started the server (and so must stop it)."""
        return self.data_dir is not None

    def stop(self, mode: str = "fast") -> None:
        """Stop the private cluster if we started it (mode: smart, fast or immediate)."""
        if self.data_dir is None or self.bin_dir is None:
            return
        subprocess.run(
            proc.as_unprivileged(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"]
            ),
            capture_output=True,
        )
        self.data_dir = None


async def is_reachable(url: str, timeout: float = 2.0) -> bool:
    """Tell whether we can log in to the Postgres server at url."""
    try:
        conn = await asyncpg.connect(url, timeout=timeout)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def ensure_postgres(name: str = "pg", min_connections: int = 0) -> Postgres:
    """Use DATABASE_URL, else 127.0.0.1:5432, else start a private cluster under .run/<name>.

    With min_connections, the local server is used only when it allows that many connections
    (the test suite runs many services at once; a stock server allows 100).
    """
    configured = os.environ.get("DATABASE_URL")
    if configured and await is_reachable(configured):
        return Postgres(url=configured)
    if await is_reachable(DEFAULT_URL) and await max_connections(DEFAULT_URL) >= min_connections:
        return Postgres(url=DEFAULT_URL)
    return start_private_cluster(name)


async def max_connections(url: str) -> int:
    """The server's max_connections setting."""
    conn = await asyncpg.connect(url, timeout=2.0)
    try:
        return int(await conn.fetchval("SHOW max_connections"))
    finally:
        await conn.close()


def find_bin_dir() -> Path | None:
    """Return the newest Debian Postgres bin directory holding initdb, if any."""
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not candidates:
        found = shutil.which("initdb")
        return Path(found).resolve().parent if found else None
    newest = max(candidates, key=lambda p: int(Path(p).parent.parent.name.split(".")[0]))
    return Path(newest).parent


def start_private_cluster(name: str = "pg") -> Postgres:
    """Start (initialising once) a trust-auth, no-fsync cluster under .run/<name> on a free port."""
    base = proc.unprivileged_dir(name)
    port_file = base / "port"
    bin_dir = _bin_dir()
    running = subprocess.run(
        proc.as_unprivileged([str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "status"]),
        capture_output=True,
    )
    if running.returncode == 0 and port_file.exists():
        url = f"postgresql://postgres@127.0.0.1:{port_file.read_text().strip()}/postgres"
        return Postgres(url=url)  # someone else's run started it: reuse, never stop it
    port = int(port_file.read_text()) if port_file.exists() else 0
    if not port or not ports.is_free(port):
        port = ports.free_port()
    server = start_cluster(base, port)
    port_file.write_text(str(port))
    return server


def start_cluster(
    base: Path, port: int | None = None, *, durable_commits: bool = False
) -> Postgres:
    """Start (initialising once) a trust-auth cluster in base/data on `port` (else a free one).

    base must be a directory the unprivileged user can reach (it is given to them). fsync is
    always off (only the OS crashing could lose data); durable_commits keeps
    synchronous_commit on, so a commit the client saw survives `pg_ctl stop -m immediate`.
    """
    bin_dir = _bin_dir()
    base.mkdir(parents=True, exist_ok=True)
    proc.give_to_unprivileged(base)
    data = base / "data"
    log = base / "postgres.log"
    pg_ctl = str(bin_dir / "pg_ctl")
    if not (data / "PG_VERSION").exists():
        subprocess.run(
            proc.as_unprivileged(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
                + ["--no-sync", "--no-locale", "-E", "UTF8"]
            ),
            check=True,
            capture_output=True,
        )
    port = port or ports.free_port()
    options = (
        f"-p {port} -h 127.0.0.1 -k {base} -c fsync=off"
        f" -c synchronous_commit={'on' if durable_commits else 'off'}"
        " -c full_page_writes=off -c max_connections=300"
    )
    started = subprocess.run(
        proc.as_unprivileged([pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "60"])
        + ["-o", options, "start"],
        capture_output=True,
        text=True,
    )
    if started.returncode != 0:
        raise RuntimeError(f"Postgres failed to start; see {log}:\n{proc.tail(log)}")
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    return Postgres(url=url, data_dir=data, bin_dir=bin_dir)


def _bin_dir() -> Path:
    """The Postgres bin directory, installing Debian's postgresql when it is missing."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        proc.apt_install("postgresql")
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError("Postgres binaries not found after installing postgresql.")
    return bin_dir


def database_url(url: str, database: str) -> str:
    """Return url pointing at another database on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def create_database(url: str, name: str) -> str:
    """Create database name on url's server if it is missing; return its URL."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            except asyncpg.DuplicateDatabaseError:
                pass
    finally:
        await conn.close()
    return database_url(url, name)


async def drop_database(url: str, name: str) -> None:
    """Drop database name on url's server, disconnecting its sessions."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
