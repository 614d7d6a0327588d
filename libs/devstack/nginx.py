"""Render deploy/nginx/nginx.conf and run nginx unprivileged under a prefix directory."""

import glob
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from libs.devstack import ports, proc

TEMPLATE = Path("deploy") / "nginx" / "nginx.conf"  # in the checkout
SERVICES = ("auth", "registry", "gateway", "sandbox", "audit")


def render(
    listen: str, upstreams: dict[str, list[str]], template: Path = proc.ROOT / TEMPLATE
) -> str:
    """Fill the template: listen address and each service's upstream host:port list."""
    text = template.read_text()
    values = {"LISTEN": listen}
    for service in SERVICES:
        addresses = upstreams.get(service) or []
        # An upstream needs one server; a closed port makes nginx answer the JSON 502.
        lines = [f"server {address} max_fails=1 fail_timeout=2s;" for address in addresses]
        values[f"{service.upper()}_SERVERS"] = " ".join(lines) or "server 127.0.0.1:9 down;"
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    if "${" in text:
        raise ValueError(f"{template} has a placeholder render() does not know.")
    return text


def find_binary() -> Path:
    """Return the nginx binary, installing nginx-light (or nginx) with apt-get when missing."""
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx", *glob.glob("/usr/local/*/nginx")):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    try:
        proc.apt_install("nginx-light")
    except subprocess.CalledProcessError:
        proc.apt_install("nginx")
    return Path("/usr/sbin/nginx")


@dataclass
class Nginx:
    """An nginx process serving the rendered template from its own prefix directory."""

    port: int
    host: str = "127.0.0.1"
    name: str = "nginx"
    upstreams: dict[str, list[str]] = field(default_factory=dict)
    log_dir: Path | None = None
    root: Path = proc.ROOT  # the checkout: the template and the `.run` the prefix lives in
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    prefix: Path | None = None

    @property
    def url(self) -> str:
        """Return the public base URL."""
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """Return the file holding nginx's access and error log."""
        if self.log_dir is not None:
            return self.log_dir / "nginx.log"
        return proc.run_dir(self.root) / "logs" / f"{self.name}.log"

    def write_config(self) -> Path:
        """Render the template into the prefix directory and return the file."""
        if self.prefix is None:
            self.prefix = proc.unprivileged_dir(self.name, self.root)
            (self.prefix / "tmp").mkdir(exist_ok=True)
            proc.give_to_unprivileged(self.prefix / "tmp")
        conf = self.prefix / "nginx.conf"
        conf.write_text(render(f"{self.host}:{self.port}", self.upstreams, self.root / TEMPLATE))
        conf.chmod(0o644)
        return conf

    def start(self) -> None:
        """Start nginx in the foreground of its own process group and wait until it listens."""
        if not ports.is_free(self.port, self.host):
            raise RuntimeError(f"Port {self.port} is taken; set SWITCHBOARD_PORT to another port.")
        conf = self.write_config()
        assert self.prefix is not None
        argv = [str(find_binary()), "-p", f"{self.prefix}/", "-c", str(conf), "-e", "stderr"]
        argv += ["-g", "daemon off; pid nginx.pid;"]
        self.process = proc.spawn(argv, self.log_path, unprivileged=True)
        for _ in range(200):
            if self.process.poll() is not None:
                break
            if ports.wait_listening(self.host, self.port, timeout=0.05):
                return
        self.stop()
        log = self.log_path
        raise RuntimeError(f"nginx failed to start; see {log}:\n{proc.tail(log)}")

    def reload(self, settle_s: float = 5.0) -> None:
        """Re-render the config for the current upstreams, make nginx load it, and wait.

        It waits (up to settle_s) until the old workers are gone: until then they close their
        idle keep-alive connections, and a client sending on one as it closes sees a reset, not
        an answer."""
        self.write_config()
        if self.process is None or self.process.poll() is not None:
            return
        old = self.workers()
        os.kill(self.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline and (not (now := self.workers()) or now & old):
            time.sleep(0.02)

    def workers(self) -> set[int]:
        """Pids of the master's worker processes."""
        if self.process is None:
            return set()
        found = set()
        for stat_file in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat_file.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:  # the parent pid
                found.add(int(stat_file.parent.name))
        return found

    def stop(self) -> None:
        """Stop nginx if it runs."""
        if self.process is not None:
            proc.stop_group(self.process)
            self.process = None
