"""The landlock-fallback tier (no user namespaces): Landlock + seccomp + rlimits + its own uid."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from libs.common import bus as busmod
from libs.common import db
from libs.common.errors import UpstreamError
from services.sandbox import runtime as runtime_mod
from services.sandbox.execution import RunRequest, run_code
from services.sandbox.isolation import LANDLOCK_FALLBACK, Limits
from services.sandbox.runtime import Runtime
from services.sandbox.server_spec import ServerSpec
from tests.integration.sandbox.conftest import FIXTURES, WORK_ROOT, sandbox_settings

SMALL = Limits(memory_mb=256, cpu_s=2, nofile=64, nproc=16, fsize_mb=1)
REACHABLE_FIXTURES = WORK_ROOT / f"fixtures-{secrets.token_hex(4)}"
CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "echo", "arguments": {"text": "landlocked"}},
}


@pytest.fixture(scope="module")
async def fallback(
    pg_url: str, nats_url: str, namespace: str, sandbox: Any
) -> AsyncIterator[Runtime]:
    """A runtime forced onto the fallback tier (migrations were applied by the sandbox app)."""
    # without a mount namespace, a hosted server's own files must be reachable where they are
    # (the self-test says so otherwise): the echo fixture is copied out of the checkout
    shutil.copytree(FIXTURES, REACHABLE_FIXTURES, dirs_exist_ok=True)
    env = {"SANDBOX_RO_PATHS": str(REACHABLE_FIXTURES)}
    async with fallback_runtime(pg_url, nats_url, namespace, "fallback", **env) as rt:
        yield rt
    shutil.rmtree(REACHABLE_FIXTURES, ignore_errors=True)


@asynccontextmanager
async def fallback_runtime(
    pg_url: str, nats_url: str, namespace: str, label: str, **env: str
) -> AsyncIterator[Runtime]:
    """A sandbox runtime on the fallback tier with `env` on top, its work root removed after."""
    settings = sandbox_settings(
        pg_url, nats_url, namespace, SANDBOX_ISOLATION="landlock-fallback", **env
    )
    try:
        async with (
            db.open_pool(settings) as pool,
            busmod.connect(settings, name=f"sandbox-{label}-test") as bus,
            runtime_mod.running(settings, pool, bus, f"{label}-test") as rt,
        ):
            yield rt
    finally:
        shutil.rmtree(settings.work_root, ignore_errors=True)


async def run(rt: Runtime, code: str) -> dict[str, Any]:
    """Run code on the fallback tier with small limits."""
    return await run_code(rt, RunRequest(code=textwrap.dedent(code), args={}, limits=SMALL))


async def test_the_fallback_tier_is_reported_and_runs_code(fallback: Runtime) -> None:
    assert fallback.tier == LANDLOCK_FALLBACK
    result = await run(fallback, "async def main():\n    return 6 * 7")
    assert result["result"] == 42
    assert result["isolation"] == LANDLOCK_FALLBACK


async def test_files_outside_the_work_dir_are_neither_read_nor_written(fallback: Runtime) -> None:
    result = await run(
        fallback,
        """
        import os
        def main():
            out = {}
            for path in ("/etc/shadow", "/etc/passwd", "/root", "/work"):
                try:
                    os.listdir(path) if os.path.isdir(path) else open(path).read()
                    out[path] = "read"
                except OSError as exc:
                    out[path] = type(exc).__name__
            for path in ("/tmp/evil", "/usr/evil"):
                try:
                    open(path, "w").write("x")
                    out[path] = "written"
                except OSError as exc:
                    out[path] = type(exc).__name__
            open("fine.txt", "w").write("ok")
            return out
        """,
    )
    assert result["outcome"] == "ok", result
    assert set(result["result"].values()) <= {"PermissionError", "FileNotFoundError"}


async def test_tcp_ptrace_and_the_service_environment_are_blocked(fallback: Runtime) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await run(
            fallback,
            f"""
            import ctypes, errno, socket
            def main():
                out = {{}}
                try:
                    socket.create_connection(("127.0.0.1", {port}), timeout=3)
                    out["tcp"] = "connected"
                except OSError as exc:
                    out["tcp"] = type(exc).__name__
                libc = ctypes.CDLL(None, use_errno=True)
                rc = libc.ptrace(16, {os.getpid()}, None, None)
                out["ptrace"] = errno.errorcode.get(ctypes.get_errno()) if rc == -1 else "ok"
                try:
                    out["environ"] = open("/proc/{os.getpid()}/environ", "rb").read()[:10].hex()
                except OSError as exc:
                    out["environ"] = type(exc).__name__
                return out
            """,
        )
    finally:
        server.close()
    assert result["result"] == {
        "tcp": "PermissionError",
        "ptrace": "EPERM",
        "environ": "PermissionError",
    }


async def test_a_stdio_server_is_hosted_on_the_fallback_tier(fallback: Runtime) -> None:
    echo = str(REACHABLE_FIXTURES / "echo_server.py")
    spec = ServerSpec(name="fallback-echo", command="python3", args=(echo,))
    reply = await fallback.manager.call(spec, CALL)
    assert reply["result"]["content"][0]["text"] == "landlocked"
    await fallback.manager.stop(spec.name)


# a hosted server's first run leaves a Python home in its work dir whose `encodings` package
# (the first module any interpreter imports) phones home: run unconfined, it reaches the host
PLANT = """
import os, sys
lib = os.path.join("home", "lib", f"python{sys.version_info[0]}.{sys.version_info[1]}")
os.makedirs(os.path.join(lib, "encodings"), exist_ok=True)
with open(os.path.join(lib, "encodings", "__init__.py"), "w") as fh:
    fh.write("import _socket\\n_socket.socket(2, 1).connect(('127.0.0.1', PORT))\\n")
"""


async def test_a_servers_env_reaches_no_process_before_the_fallback_tier_confines_it(
    fallback: Runtime,
) -> None:
    reached: list[bool] = []

    def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reached.append(True)
        writer.close()

    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    name = f"fallback-envy-{secrets.token_hex(3)}"
    plant = ServerSpec(name=name, command="python3", args=("-c", PLANT.replace("PORT", str(port))))
    with pytest.raises(UpstreamError):  # not an MCP server: it plants and exits
        await fallback.manager.call(plant, CALL)
    home = fallback.layout.work_root / "servers" / name / "home"
    assert (home / "lib").is_dir()
    echo = str(REACHABLE_FIXTURES / "echo_server.py")
    attack = ServerSpec(name=name, command="python3", args=(echo,), env={"PYTHONHOME": str(home)})
    try:
        reply = await fallback.manager.call(attack, CALL)
    except UpstreamError as exc:
        reply = {"error": exc.message}
    finally:
        await fallback.manager.stop(name)
        listener.close()
    assert reached == []  # the planted code never ran outside Landlock and seccomp
    assert reply["result"]["content"][0]["text"] == "landlocked", reply


# what an attacker tries where Landlock has no rule: UDP (never restricted), TCP (no rules before
# ABI 4), a host service's pathname Unix socket (Landlock does not govern connect()), netlink
NETWORK_PROBE = """
import socket
def attempt(make, use):
    try:
        with make() as sock:
            use(sock)
        return "done"
    except OSError as exc:
        return type(exc).__name__
def main(tcp, udp, unix):
    return {
        "tcp": attempt(lambda: socket.socket(), lambda s: s.connect(("127.0.0.1", tcp))),
        "udp": attempt(
            lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
            lambda s: s.sendto(b"escaped", ("127.0.0.1", udp)),
        ),
        "udp6": attempt(
            lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM),
            lambda s: s.sendto(b"escaped", ("::1", udp)),
        ),
        "unix": attempt(lambda: socket.socket(socket.AF_UNIX), lambda s: s.connect(unix)),
        "netlink": attempt(
            lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0), lambda s: s.bind((0, 0))
        ),
        "socketpair": pair(),
    }
def pair():
    try:
        a, b = socket.socketpair()
        with a, b:
            a.send(b"x")
            b.recv(1)
        return "done"
    except OSError as exc:
        return type(exc).__name__
"""


class Datagrams(asyncio.DatagramProtocol):
    """Counts what arrives."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """Keep one datagram."""
        self.seen.append(data)


async def probe_network(rt: Runtime) -> tuple[dict[str, Any], list[bytes]]:
    """Run NETWORK_PROBE against host listeners: (what it saw, the datagrams that arrived)."""
    loop = asyncio.get_running_loop()
    tcp = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    udp, counter = await loop.create_datagram_endpoint(Datagrams, local_addr=("127.0.0.1", 0))
    # a socket any uid may reach, as Postgres's in /var/run/postgresql
    where = Path(tempfile.mkdtemp(prefix="switchboard-host-service-"))
    where.chmod(0o755)
    unix = await asyncio.start_unix_server(lambda r, w: w.close(), path=str(where / "s.sock"))
    (where / "s.sock").chmod(0o777)
    args = {
        "tcp": tcp.sockets[0].getsockname()[1],
        "udp": udp.get_extra_info("sockname")[1],
        "unix": str(where / "s.sock"),
    }
    try:
        result = await run_code(
            rt, RunRequest(code=textwrap.dedent(NETWORK_PROBE), args=args, limits=SMALL)
        )
    finally:
        tcp.close()
        udp.close()
        unix.close()
        shutil.rmtree(where, ignore_errors=True)
    assert result["outcome"] == "ok", result
    return result["result"], counter.seen


async def test_no_socket_but_a_socketpair_leaves_the_fallback_tier(fallback: Runtime) -> None:
    seen, datagrams = await probe_network(fallback)
    assert seen == {
        "tcp": "PermissionError",
        "udp": "PermissionError",
        "udp6": "PermissionError",
        "unix": "PermissionError",
        "netlink": "PermissionError",
        "socketpair": "done",
    }
    assert datagrams == []


@pytest.fixture(scope="module")
async def debian12(
    pg_url: str, nats_url: str, namespace: str, sandbox: Any
) -> AsyncIterator[Runtime]:
    """The fallback tier as on Debian 12's kernel (Landlock ABI 2: no TCP rules, no scoping)."""
    env = {"SANDBOX_LANDLOCK_ABI_MAX": "2", "SANDBOX_RO_PATHS": ""}
    async with fallback_runtime(pg_url, nats_url, namespace, "debian12", **env) as rt:
        yield rt


async def test_on_landlock_abi_2_seccomp_still_keeps_code_off_the_network(
    debian12: Runtime,
) -> None:
    seen, datagrams = await probe_network(debian12)
    assert set(seen.values()) == {"PermissionError", "done"} and seen["socketpair"] == "done"
    assert datagrams == []
    report = debian12.enforcement
    assert (report.landlock_abi, report.landlock_tcp, report.signals_scoped) == (2, False, True)
    assert report.network and report.network_by == "seccomp"


async def test_the_fallback_tier_reports_what_it_enforces(fallback: Runtime) -> None:
    report = fallback.enforcement.to_dict()
    assert report["filesystem"] and report["network"] and report["seccomp"]
    assert report["separate_uid"] is (os.geteuid() == 0)
    assert report["pid_namespace"] is False
    assert report["landlock_tcp"] is True
    assert "PID namespace" in " ".join(fallback.enforcement.missing())
