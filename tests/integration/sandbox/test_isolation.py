"""Attacks from inside the sandbox: each is blocked, and each run is reported as an event."""

from __future__ import annotations

import asyncio
import os
import socket
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.sandbox.execution import RunRequest, run_code
from services.sandbox.isolation import Limits
from tests.integration.sandbox.conftest import ALLOWED_LOOPBACK, EventTap

SMALL = Limits(memory_mb=256, cpu_s=2, nofile=64, nproc=16, fsize_mb=1)


async def attack(sandbox: Any, events: EventTap, code: str, **kw: Any) -> dict[str, Any]:
    """Run `code` (defining main) in a fresh sandbox; wait for its execution event."""
    tool = f"attack-{os.urandom(3).hex()}"
    req = RunRequest(code=textwrap.dedent(code), args={}, tool=tool, limits=SMALL, **kw)
    result = await run_code(sandbox.state.runtime, req)
    event = await events.wait_for(
        lambda e: e["type"] == "sandbox.execution.finished" and e["data"]["tool"] == tool
    )
    result["event"] = event["data"]
    return result


@pytest.fixture
async def host_listener() -> AsyncIterator[int]:
    """A TCP listener on the host's loopback."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_code_runs_and_reports_result_output_and_memory(
    sandbox: Any, events: EventTap
) -> None:
    result = await attack(
        sandbox,
        events,
        """
        async def main():
            print("to stdout")
            return {"sum": 1 + 2}
        """,
    )
    assert result["outcome"] == "ok"
    assert result["result"] == {"sum": 3}
    assert result["stdout"] == "to stdout\n"
    assert result["memory_kb"] > 0
    assert result["event"]["outcome"] == "ok"
    assert result["event"]["isolation"] == "bwrap-userns"


async def test_a_tcp_connect_to_a_host_listener_fails(
    sandbox: Any, events: EventTap, host_listener: int
) -> None:
    result = await attack(
        sandbox,
        events,
        f"""
        import socket
        def main():
            socket.create_connection(("127.0.0.1", {host_listener}), timeout=3)
            return "connected"
        """,
    )
    assert result["outcome"] == "error"
    assert result["error"]["type"] == "ConnectionRefusedError"
    assert result["event"]["error_type"] == "ConnectionRefusedError"


async def test_a_dns_lookup_fails(sandbox: Any, events: EventTap) -> None:
    result = await attack(
        sandbox,
        events,
        """
        import socket
        def main():
            return socket.getaddrinfo("pypi.org", 443)
        """,
    )
    assert result["error"]["type"] == "gaierror"
    assert result["event"]["outcome"] == "error"


async def test_writes_outside_the_work_dir_fail(sandbox: Any, events: EventTap) -> None:
    result = await attack(
        sandbox,
        events,
        """
        import errno
        def main():
            blocked = {}
            for path in ("/evil", "/usr/evil", "/etc/evil", "/opt/switchboard/evil"):
                try:
                    open(path, "w").write("x")
                    blocked[path] = False
                except OSError as exc:
                    blocked[path] = errno.errorcode[exc.errno]
            open("/work/fine.txt", "w").write("ok")
            return blocked
        """,
    )
    assert result["outcome"] == "ok"
    assert all(result["result"].values()), result["result"]
    assert set(result["result"].values()) <= {"EROFS", "EACCES", "ENOENT", "EPERM"}


async def test_host_secrets_and_other_tenants_work_dirs_are_invisible(
    sandbox: Any, events: EventTap
) -> None:
    root = sandbox.state.runtime.settings.work_root
    result = await attack(
        sandbox,
        events,
        f"""
        import os
        def main():
            seen = {{}}
            for path in ("/etc/shadow", "/etc/passwd", "{root}/servers", "/work/../servers"):
                try:
                    os.listdir(path) if not path.startswith("/etc") else open(path).read()
                    seen[path] = "read"
                except OSError as exc:
                    seen[path] = type(exc).__name__
            return seen
        """,
    )
    assert "read" not in result["result"].values(), result["result"]
    assert result["result"]["/etc/shadow"] == "FileNotFoundError"


async def test_host_processes_are_invisible(sandbox: Any, events: EventTap) -> None:
    result = await attack(
        sandbox,
        events,
        """
        import os
        def main():
            return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        """,
    )
    assert os.getpid() not in result["result"]
    assert len(result["result"]) <= 6


async def test_a_fork_bomb_hits_the_process_limit(sandbox: Any, events: EventTap) -> None:
    result = await attack(
        sandbox,
        events,
        """
        import os, time
        def main():
            children = 0
            while True:
                pid = os.fork()
                if pid == 0:
                    time.sleep(30)
                    os._exit(0)
                children += 1
        """,
    )
    assert result["outcome"] == "error"
    assert result["error"]["type"] == "BlockingIOError"
    assert result["event"]["limit"] == "processes"


async def test_a_memory_bomb_hits_the_memory_limit(sandbox: Any, events: EventTap) -> None:
    result = await attack(
        sandbox,
        events,
        """
        def main():
            hoard = []
            while True:
                hoard.append(bytearray(16 * 1024 * 1024))
        """,
    )
    assert result["error"]["type"] == "MemoryError"
    assert result["event"]["limit"] == "memory"


async def test_a_cpu_loop_is_killed_at_the_cpu_limit(sandbox: Any, events: EventTap) -> None:
    result = await attack(
        sandbox,
        events,
        """
        def main():
            while True:
                pass
        """,
        timeout_s=20,
    )
    assert result["outcome"] == "killed", (result["exit_code"], result["signal"], result["stderr"])
    assert result["event"]["limit"] == "cpu", (result["exit_code"], result["signal"])
    assert result["duration_ms"] < 15_000


async def test_ptrace_and_new_namespaces_are_denied_by_seccomp(
    sandbox: Any, events: EventTap
) -> None:
    result = await attack(
        sandbox,
        events,
        """
        import ctypes, errno, os
        def main():
            libc = ctypes.CDLL(None, use_errno=True)
            out = {}
            rc = libc.ptrace(16, 1, None, None)  # PTRACE_ATTACH to pid 1
            out["ptrace"] = errno.errorcode.get(ctypes.get_errno()) if rc == -1 else "allowed"
            rc = libc.unshare(0x40000000)  # CLONE_NEWNET
            out["unshare"] = errno.errorcode.get(ctypes.get_errno()) if rc == -1 else "allowed"
            rc = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
            out["mount"] = errno.errorcode.get(ctypes.get_errno()) if rc == -1 else "allowed"
            return out
        """,
    )
    assert result["result"] == {"ptrace": "EPERM", "unshare": "EPERM", "mount": "EPERM"}


async def test_the_service_environment_is_not_readable(sandbox: Any, events: EventTap) -> None:
    secret = sandbox.state.runtime.settings.database_url
    result = await attack(
        sandbox,
        events,
        """
        import os
        def main():
            seen = dict(os.environ)
            for pid in (p for p in os.listdir("/proc") if p.isdigit()):
                try:
                    seen[pid] = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
                except OSError as exc:
                    seen[pid] = type(exc).__name__
            return seen
        """,
    )
    text = str(result["result"])
    assert "DATABASE_URL" not in text
    assert secret not in text
    assert "NATS_URL" not in text


async def test_untrusted_egress_goes_only_through_the_allowlist_proxy(
    sandbox: Any, events: EventTap
) -> None:
    rt = sandbox.state.runtime
    hits: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hits.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, ALLOWED_LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        other = probe.getsockname()[1]
    tool_server = f"net-{os.urandom(3).hex()}"
    async with rt.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO sandbox.allowed_hosts (server, host) VALUES ($1, $2)",
            tool_server,
            f"{ALLOWED_LOOPBACK}:{port}",
        )
    code = f"""
        import urllib.request, urllib.error
        def main():
            out = {{}}
            for url in ("http://{ALLOWED_LOOPBACK}:{port}/ok", "http://localhost:{other}/no"):
                try:
                    out[url] = urllib.request.urlopen(url, timeout=5).read().decode()
                except urllib.error.HTTPError as exc:
                    out[url] = exc.code
            return out
        """
    try:
        result = await attack(sandbox, events, code, server=tool_server)
    finally:
        server.close()
    assert result["result"] == {
        f"http://{ALLOWED_LOOPBACK}:{port}/ok": "hello",
        f"http://localhost:{other}/no": 403,
    }
    assert hits and hits[0].startswith(b"GET /ok HTTP/1.1")
    refused = await events.wait_for(
        lambda e: e["type"] == "sandbox.egress.refused" and e["data"]["server"] == tool_server
    )
    assert refused["data"]["host"] == "localhost"
    pending = await events.wait_for(
        lambda e: e["type"] == "sandbox.approval.requested" and e["data"]["server"] == tool_server
    )
    assert pending["data"]["kind"] == "network"
    assert pending["data"]["status"] == "pending"
