"""The images' HEALTHCHECK: GET /healthz of the service this container runs; exit 0 if 200.

Which service: the first argument, else `SWITCHBOARD_SERVICE`, else the `-m services.<name>` of
the container's processes (PID 1 first, so `docker run --init` works too). Its port is the one
the service itself reads (`<SERVICE>_PORT`, else its default), through its own settings class.
Only the standard library and the service's settings module are imported; the script runs from
the image's working directory (/app), where `services` is importable.
"""

from __future__ import annotations

import importlib
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

SERVICES = ("auth", "registry", "gateway", "sandbox", "audit")
TIMEOUT_S = 3.0


def service_of(cmdline: bytes) -> str | None:
    """The service a process runs, from its NUL-separated /proc/<pid>/cmdline."""
    args = cmdline.split(b"\0")
    for flag, module in zip(args, args[1:], strict=False):
        name = module.decode(errors="replace").removeprefix("services.")
        if flag == b"-m" and module.startswith(b"services.") and name in SERVICES:
            return name
    return None


def running_service(proc: Path = Path("/proc")) -> str | None:
    """The service one of the container's processes runs: PID 1's, else the lowest pid's."""
    pids = sorted((int(p.name) for p in proc.iterdir() if p.name.isdigit()), key=lambda p: p != 1)
    for pid in pids:
        try:
            found = service_of((proc / str(pid) / "cmdline").read_bytes())
        except OSError:
            continue  # gone, or not ours to read
        if found:
            return found
    return None


def port_of(service: str) -> int:
    """The port the service listens on, read as the service reads it."""
    from libs.common.settings import Settings

    module = importlib.import_module(f"services.{service}.settings")
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Settings) and value.service == service:
            return value.from_env().port
    raise LookupError(f"services.{service}.settings has no settings class")


def probe(port: int) -> str | None:
    """None when http://127.0.0.1:<port>/healthz answers 200; else what went wrong."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT_S) as r:
            return None if r.status == 200 else f"/healthz answered {r.status}"
    except urllib.error.HTTPError as exc:
        return f"/healthz answered {exc.code}"
    except OSError as exc:
        return f"/healthz on port {port} unreachable: {exc}"


def main(argv: list[str]) -> int:
    """Probe the service; print why it is unhealthy and return 1, else return 0."""
    service = (
        (argv[0] if argv else "") or os.environ.get("SWITCHBOARD_SERVICE") or running_service()
    )
    if service not in SERVICES:
        print(f"healthcheck: no switchboard service found (got {service!r})", file=sys.stderr)
        return 1
    problem = probe(port_of(service))
    if problem:
        print(f"healthcheck: {service}: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
