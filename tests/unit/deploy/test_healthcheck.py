"""The images' HEALTHCHECK script against a real HTTP listener, and its service discovery."""

from __future__ import annotations

import http.server
import importlib.util
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "deploy" / "images" / "healthcheck.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_healthcheck", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def listener() -> Iterator[tuple[int, list[int], list[str]]]:
    """A local HTTP server: answers GET with the status at the head of the list, records paths."""
    status = [200]
    paths: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(status[0])
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], status, paths
    finally:
        server.shutdown()
        server.server_close()


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith("_PORT")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**base, "PYTHONPATH": str(ROOT), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_service_answering_200_on_healthz_is_healthy(listener) -> None:
    port, _, paths = listener
    result = run("auth", AUTH_PORT=str(port))
    assert result.returncode == 0, result.stderr
    assert paths == ["/healthz"]


def test_the_service_may_be_named_by_the_environment(listener) -> None:
    port, _, paths = listener
    result = run(SWITCHBOARD_SERVICE="audit", AUDIT_PORT=str(port))
    assert result.returncode == 0, result.stderr
    assert paths == ["/healthz"]


def test_a_service_answering_503_is_unhealthy_and_says_so(listener) -> None:
    port, status, _ = listener
    status[0] = 503
    result = run("gateway", GATEWAY_PORT=str(port))
    assert result.returncode == 1
    assert "gateway: /healthz answered 503" in result.stderr


def test_nothing_listening_is_unhealthy(listener) -> None:
    port, _, paths = listener
    result = run("registry", REGISTRY_PORT=str(port + 1 if port < 65535 else port - 1))
    assert result.returncode == 1
    assert "unreachable" in result.stderr
    assert paths == []


def test_an_unknown_service_is_unhealthy() -> None:
    result = run("nginx")
    assert result.returncode == 1
    assert "no switchboard service found" in result.stderr


def test_the_port_is_the_one_the_service_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    healthcheck = load()
    monkeypatch.delenv("SANDBOX_PORT", raising=False)
    assert healthcheck.port_of("sandbox") == 8104
    monkeypatch.setenv("SANDBOX_PORT", "18104")
    assert healthcheck.port_of("sandbox") == 18104


def proc_tree(root: Path, processes: dict[int, bytes]) -> Path:
    for pid, cmdline in processes.items():
        (root / str(pid)).mkdir()
        (root / str(pid) / "cmdline").write_bytes(cmdline)
    (root / "self").mkdir()
    return root


def test_the_service_is_found_in_pid_1s_command_line(tmp_path: Path) -> None:
    healthcheck = load()
    proc = proc_tree(
        tmp_path,
        {
            1: b"python\0-m\0services.sandbox\0",
            7: b"/usr/bin/bwrap\0--args\x003\0python3\0-m\0services.gateway\0",
        },
    )
    assert healthcheck.running_service(proc) == "sandbox"


def test_under_an_init_the_service_is_found_in_a_child(tmp_path: Path) -> None:
    healthcheck = load()
    proc = proc_tree(
        tmp_path,
        {1: b"/sbin/docker-init\0--\0python\0-m\0services.audit\0", 9: b"sleep\x0010\0"},
    )
    assert healthcheck.running_service(proc) == "audit"
    (tmp_path / "child").mkdir()
    proc = proc_tree(
        tmp_path / "child",
        {1: b"/sbin/docker-init\0--\0sh\0", 12: b"/opt/venv/bin/python\0-m\0services.auth\0"},
    )
    assert healthcheck.running_service(proc) == "auth"


def test_other_modules_are_not_services(tmp_path: Path) -> None:
    healthcheck = load()
    assert healthcheck.service_of(b"python\0-m\0services.gateway.metrics\0") is None
    assert healthcheck.service_of(b"python\0-m\0pytest\0services.auth\0") is None
    assert healthcheck.service_of(b"python\0services.auth\0") is None
    proc = proc_tree(tmp_path, {1: b"sleep\x00100\0"})
    assert healthcheck.running_service(proc) is None
