"""Start and stop the five services as subprocesses, one process group each."""

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from libs.devstack import ports, proc

SERVICES = ("auth", "registry", "gateway", "sandbox", "audit")


@dataclass
class ServiceProcess:
    """One running replica of a service."""

    service: str
    index: int
    host: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def address(self) -> str:
        """Return host:port, as an nginx upstream server."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Return the replica's own base URL (bypassing nginx)."""
        return f"http://{self.address}"

    @property
    def instance(self) -> str:
        """Return the replica id passed as SWITCHBOARD_INSTANCE."""
        return f"{self.service}-{self.index}"

    def alive(self) -> bool:
        """Tell whether the process still runs."""
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        """Stop gracefully (SIGTERM, then SIGKILL after timeout); return the exit code."""
        return proc.stop_group(self.process, timeout=timeout)

    def kill(self) -> int:
        """Kill at once (SIGKILL), like a crash; return the exit code."""
        return proc.kill_group(self.process)


def log_name(service: str, index: int) -> str:
    """Return `<service>.log` for the first replica and `<service>-N.log` for the others."""
    return f"{service}.log" if index == 1 else f"{service}-{index}.log"


def start_service(
    service: str,
    index: int,
    env: dict[str, str],
    log_dir: Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    python: str = sys.executable,
    cwd: Path = proc.ROOT,
) -> ServiceProcess:
    """Start `python -m services.<service>` in the checkout `cwd` on a free port.

    Its env is `env` on top of os.environ."""
    if service not in SERVICES:
        raise ValueError(f"Unknown service {service!r}; expected one of {', '.join(SERVICES)}.")
    port = port or ports.free_port(host)
    prefix = service.upper()
    child_env = {
        **os.environ,
        **env,
        f"{prefix}_HOST": host,
        f"{prefix}_PORT": str(port),
        "SWITCHBOARD_INSTANCE": f"{service}-{index}",
        "PYTHONUNBUFFERED": "1",
    }
    log_path = log_dir / log_name(service, index)
    process = proc.spawn([python, "-m", f"services.{service}"], log_path, env=child_env, cwd=cwd)
    return ServiceProcess(service, index, host, port, log_path, process)


def stop_all(replicas: list[ServiceProcess], timeout: float = 5.0) -> None:
    """Stop replicas together: SIGTERM to all first, then wait for each."""
    for replica in replicas:
        if replica.alive():
            try:
                os.killpg(replica.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for replica in replicas:
        replica.stop(timeout=timeout)
