"""The sandbox on the booted platform: its isolation tier, a stdio server, a code tool, attacks.

A stdio server from npm and a code tool are called through /mcp, and attacks from inside a
sandbox each must be blocked."""

from __future__ import annotations

import asyncio
import glob
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.devstack import proc
from tests.acceptance.platform_boot import Platform
from tests.acceptance.rest import Admin, expect, unique
from tests.acceptance.sdk import call_text, sdk_client
from tests.acceptance.wire import message, wait_routed
from tests.e2e.gateway_support import call_tool
from tests.support import node

WORKING_TIERS = ("bwrap-userns", "landlock-fallback", "gvisor")
PROBED_NAME = "pypi.org"  # a name to resolve; the probe asks whether the host resolves it too

# Each probe reaches `os` and `socket` through a module the import allowlist allows
# (urllib.request imports both): the allowlist is not the boundary, the sandbox is.
PROBE = """
import json
from urllib import request

os = request.os
socket = request.socket


def attempt(action):
    try:
        return action()
    except Exception as exc:
        return type(exc).__name__


def connect(address):
    socket.create_connection(address, timeout=3).close()
    return "connected"


def fetch(url):
    return "fetched %s" % request.urlopen(url, timeout=5).status


def resolve(name):
    return "resolved %s" % socket.getaddrinfo(name, 443)[0][4][0]


def ask_nameserver(address):
    header = bytes.fromhex("abcd01000001000000000000")  # one recursive question
    query = header + bytes.fromhex("0470797069036f72670000010001")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(2)
    udp.sendto(query, address)
    udp.recv(512)
    return "answered"


def environ_of(pid):
    with open("/proc/%s/environ" % pid, "rb") as handle:
        return handle.read().decode(errors="replace")


async def main(port: int, host_ip: str, name: str, nameserver: str, paths: list):
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    return {
        "tcp to the host's loopback": attempt(lambda: connect(("127.0.0.1", port))),
        "tcp to the host's address": attempt(lambda: connect((host_ip, port))),
        "http through the egress proxy": attempt(lambda: fetch("http://127.0.0.1:%d/" % port)),
        "dns lookup": attempt(lambda: resolve(name)),
        "dns server": attempt(lambda: ask_nameserver((nameserver, 53))) if nameserver else "-",
        "visible host paths": [p for p in paths if os.path.lexists(p)],
        "environment": dict(os.environ),
        "process environments": {p: attempt(lambda: environ_of(p)) for p in pids},
        "pids": pids,
    }
"""
FORK_BOMB = """
import time
from urllib import request

os = request.os


async def main():
    while True:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
"""
MEMORY_BOMB = """
async def main():
    hoard = []
    while True:
        hoard.append(bytearray(16 * 1024 * 1024))
"""
DOUBLE = """
async def main(n: int):
    return n * 2
"""
NUMBER = {"type": "object", "properties": {"n": {"type": "integer"}}}


async def test_the_sandbox_reports_a_working_isolation_tier_and_a_passing_self_test(
    api: httpx.AsyncClient, admin: Admin
) -> None:
    status = expect(
        await api.get("/api/v1/sandbox/status", headers=admin.headers), 200, "sandbox: status"
    )
    isolation = status["isolation"]
    assert isolation["tier"] in WORKING_TIERS and isolation["untrusted_code_allowed"], (
        f"sandbox: status reports a working isolation tier: {isolation}"
    )
    self_test = status.get("self_test") or {}
    assert self_test.get("ok") is True, f"sandbox: the start-up self-test passes: {self_test}"


async def register_everything(
    platform: Platform, api: httpx.AsyncClient, admin: Admin, name: str, **fields: Any
) -> None:
    """Register server-everything (npm) as a stdio server; wait until /mcp lists its echo."""
    body = {
        "name": name,
        "transport": "stdio",
        "command": "node",
        "args": [str(node.SERVER_EVERYTHING), "stdio"],
        **fields,
    }
    server = expect(
        await api.post("/api/v1/servers", json=body, headers=admin.headers),
        201,
        "registry: register a stdio server",
    )
    assert server["status"] == "healthy", (
        f"sandbox: a stdio server is discovered in the sandbox: {server}; {platform.logs()}"
    )
    await wait_routed(api, admin.key, f"{name}__echo")


async def test_server_everything_from_npm_runs_as_a_sandboxed_stdio_server_called_through_mcp(
    platform: Platform, api: httpx.AsyncClient, admin: Admin
) -> None:
    capability = "sandbox: server-everything (npm) as a stdio server, called through /mcp"
    name = unique("everything")
    await register_everything(platform, api, admin, name)
    async with sdk_client(platform.url, admin.key) as client:
        text = await call_text(client, f"{name}__echo", {"message": "from the sandbox"})
    assert text == "Echo: from the sandbox", f"{capability}: {text}; {platform.logs()}"
    status = expect(
        await api.get(f"/api/v1/sandbox/servers/{name}/status", headers=admin.headers),
        200,
        "sandbox: a hosted server's status",
    )
    states = [p["state"] for p in status["processes"]]
    assert states == ["running"], f"{capability}: one running process: {status}"


async def test_a_per_user_stdio_server_with_a_long_name_is_called_through_mcp(
    platform: Platform, api: httpx.AsyncClient, admin: Admin
) -> None:
    capability = "sandbox: a per-user stdio server (a process per user) called through /mcp"
    name = unique("everything-for-each-user")  # 31 characters; names may have 64
    await register_everything(platform, api, admin, name, per_user=True)
    async with sdk_client(platform.url, admin.key) as client:
        text = await call_text(client, f"{name}__echo", {"message": "mine"})
    assert text == "Echo: mine", f"{capability}: {text}; {platform.logs()}"


async def test_a_code_tool_is_created_approved_and_called_through_mcp(
    platform: Platform, api: httpx.AsyncClient, admin: Admin
) -> None:
    capability = "sandbox: a code tool created, approved and called through /mcp"
    name = unique("double")
    body = {"name": name, "code": DOUBLE, "input_schema": NUMBER}
    tool = expect(
        await api.post("/api/v1/sandbox/tools", json=body, headers=admin.headers),
        201,
        "sandbox: create a code tool",
    )
    pending = expect(
        await api.get(
            "/api/v1/sandbox/approvals/tools", params={"status": "pending"}, headers=admin.headers
        ),
        200,
        "sandbox: list pending tool approvals",
    )
    approval = next((a for a in pending["items"] if a["subject"] == tool["id"]), None)
    assert approval is not None, f"{capability}: a new tool awaits approval: {pending}"
    expect(
        await api.post(
            f"/api/v1/sandbox/approvals/tools/{approval['id']}/action",
            json={"action": "approve"},
            headers=admin.headers,
        ),
        200,
        "sandbox: approve a code tool",
    )
    await wait_routed(api, admin.key, f"code__{name}")
    resp = await call_tool(api, "", admin.key, f"code__{name}", {"n": 21})
    doc = message(resp) or {}
    assert (doc.get("result") or {}).get("structuredContent") == {"result": 42}, (
        f"{capability}: answered {resp.status_code} {resp.text[:600]}; {platform.logs()}"
    )


@pytest.fixture
async def host_listener() -> AsyncIterator[tuple[int, list[str]]]:
    """A TCP listener on every host address; yields its port and the peers that connected."""
    peers: list[str] = []

    def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(str(writer.get_extra_info("peername")))
        writer.close()

    server = await asyncio.start_server(accept, "0.0.0.0", 0)
    yield server.sockets[0].getsockname()[1], peers
    server.close()
    await server.wait_closed()


def nameserver() -> str:
    """The host's first nameserver ("" when it has none)."""
    for line in Path("/etc/resolv.conf").read_text().splitlines():
        if line.startswith("nameserver"):
            return line.split()[1]
    return ""


def host_address(towards: str) -> str:
    """The host's own address on the route towards `towards` (loopback when it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.connect((towards or "192.0.2.1", 53))
        except OSError:
            return "127.0.0.1"
        return udp.getsockname()[0]


def host_paths(platform: Platform) -> list[str]:
    """Host paths no sandbox may see: secrets, both checkouts, every sandbox work root."""
    candidates = [
        "/etc/shadow",
        "/root",
        str(platform.root),
        str(platform.root / ".run" / "dev-secrets.env"),
        str(platform.root / ".run" / "admin-password"),
        str(proc.ROOT / "services"),
        str(proc.ROOT / ".run"),
        *glob.glob("/var/tmp/switchboard-sandbox-*"),
        *glob.glob("/var/tmp/switchboard-sandbox-*/servers/*"),
    ]
    return [path for path in candidates if Path(path).exists()]


async def run_in_sandbox(
    api: httpx.AsyncClient, admin: Admin, code: str, args: dict[str, Any]
) -> dict[str, Any]:
    """POST /api/v1/sandbox/tools/test-code: `code` run in a fresh sandbox, as code tools run."""
    body = {"code": code, "input_schema": {"type": "object", "properties": {}}, "args": args}
    resp = await api.post("/api/v1/sandbox/tools/test-code", json=body, headers=admin.headers)
    return expect(resp, 200, "sandbox isolation: run code in a sandbox (test-code)")


async def test_attacks_from_inside_a_sandbox_reach_no_network_host_file_secret_or_process(
    platform: Platform,
    api: httpx.AsyncClient,
    admin: Admin,
    host_listener: tuple[int, list[str]],
) -> None:
    port, connected = host_listener
    server = nameserver()
    paths = host_paths(platform)
    assert "/etc/shadow" in paths and str(platform.root) in paths, f"host paths: {paths}"
    try:
        host_resolves = bool(await asyncio.get_running_loop().getaddrinfo(PROBED_NAME, 443))
    except OSError:
        host_resolves = False  # then only the nameserver probe says something about DNS
    args = {
        "port": port,
        "host_ip": host_address(server),
        "name": PROBED_NAME,
        "nameserver": server,
        "paths": paths,
    }
    probe, fork, memory = await asyncio.gather(
        run_in_sandbox(api, admin, PROBE, args),
        run_in_sandbox(api, admin, FORK_BOMB, {}),
        run_in_sandbox(api, admin, MEMORY_BOMB, {}),
    )
    assert probe["outcome"] == "ok", f"sandbox isolation: the probe ran: {probe}"
    seen = probe["result"]
    environment = {**platform.stack.env, **platform.stack.config.service_env["sandbox"]}
    sensitive = {
        k: v
        for k, v in environment.items()
        if k.endswith(("DATABASE_URL", "NATS_URL"))
        or "SECRET" in k
        or "KEY" in k
        or "PASSWORD" in k
    }
    text = json.dumps(seen)
    leaked = [k for k, v in sensitive.items() if k in text or v in text]  # names only
    blocked = {
        "no network": all(
            seen[k] in ("ConnectionRefusedError", "OSError", "TimeoutError")
            for k in ("tcp to the host's loopback", "tcp to the host's address")
        )
        and seen["http through the egress proxy"] in ("HTTPError", "URLError")
        and not connected,
        "no DNS": seen["dns lookup"] == "gaierror" and seen["dns server"] != "answered",
        "no host files": seen["visible host paths"] == [],
        "no platform secrets in the environment": not leaked,
        "only the sandbox's own processes": len(seen["pids"]) <= 6,
        "fork bomb stopped": (fork["outcome"], fork["limit"]) == ("error", "processes"),
        "memory bomb stopped": (memory["outcome"], memory["limit"]) == ("error", "memory"),
    }
    broken = [what for what, ok in blocked.items() if not ok]
    observed = {k: v for k, v in seen.items() if k not in ("environment", "process environments")}
    assert not broken, (
        f"sandbox isolation: {broken} (host resolves {PROBED_NAME}: {host_resolves}; "
        f"listener saw {connected}; leaked variables {leaked}); probe saw {observed}; "
        f"fork bomb {fork['outcome']}/{fork['limit']}/{fork['error']}; "
        f"memory bomb {memory['outcome']}/{memory['limit']}/{memory['error']}"
    )
