"""Sandbox → platform: allowed hosts change only by approval, and the proxy never reaches inside."""

from __future__ import annotations

import asyncio
import secrets
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from libs.common import rpc
from libs.common.ssrf import parse_networks
from services.sandbox.addresses import AddressGuard
from services.sandbox.egress import EgressProxy
from services.sandbox.execution import RunRequest, run_code
from tests.integration.sandbox.conftest import ALLOWED_LOOPBACK, register_stdio, unique_name
from tests.support.auth import AuthClient

# what an attacker runs inside the sandbox: CONNECT through the egress bridge, then whatever
# protocol the destination speaks (NATS: subscribe to an inbox, ask the registry for secrets)
PROBE = """
import json, socket

def read_until(sock, mark, limit=1 << 20):
    data = b""
    while mark not in data and len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data

def tunnel(target):
    sock = socket.create_connection(("127.0.0.1", 3128), timeout=10)
    sock.sendall(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n".encode())
    head = read_until(sock, b"\\r\\n\\r\\n")
    return sock, head.split(b"\\r\\n")[0].decode(errors="replace")

def steal(target, subject, victim):
    sock, status = tunnel(target)
    if " 200 " not in status:
        return status
    read_until(sock, b"\\r\\n")  # NATS says INFO first
    body = json.dumps({"names": [victim]}).encode()
    sock.sendall(
        b'CONNECT {"verbose":false,"pedantic":false}\\r\\nSUB _INBOX.steal 1\\r\\n'
        + f"PUB {subject} _INBOX.steal {len(body)}\\r\\n".encode() + body + b"\\r\\n"
    )
    data = read_until(sock, b"MSG _INBOX.steal")
    data += read_until(sock, b"\\r\\n")
    header = data[data.index(b"MSG _INBOX.steal"):].split(b"\\r\\n")[0]
    size = int(header.split()[-1])
    rest = data.split(header + b"\\r\\n", 1)[1]
    while len(rest) < size:
        rest += sock.recv(65536)
    return rest[:size].decode(errors="replace")

def fetch(target):
    sock, status = tunnel(target)
    if " 200 " not in status:
        return status
    sock.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
    return read_until(sock, b"ok").decode(errors="replace")

def main(nats, subject, victim, targets):
    out = {"nats": steal(nats, subject, victim)} if nats else {}
    for target in targets:
        out[target] = fetch(target)
    return out
"""


@pytest.fixture
async def listener() -> AsyncIterator[tuple[int, list[str]]]:
    """An HTTP listener on every loopback address (127.0.0.1 and the allowlisted 127.0.0.2)."""
    peers: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("sockname")[0])
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "0.0.0.0", 0)
    yield server.sockets[0].getsockname()[1], peers
    server.close()
    await server.wait_closed()


async def allow_directly(sandbox: Any, server: str, hosts: list[str]) -> None:
    """Rows as a legacy allowlist (or a careless approval) left them: no check on the way in."""
    async with sandbox.state.runtime.pool.acquire() as conn:
        for host in hosts:
            await conn.execute(
                "INSERT INTO sandbox.allowed_hosts (server, host) VALUES ($1, $2)", server, host
            )


async def test_a_write_grant_only_requests_hosts_and_wildcards_or_internal_addresses_are_refused(
    api: httpx.AsyncClient, reg_api: httpx.AsyncClient, auth: AuthClient, admin: dict
) -> None:
    name = unique_name("egress")
    org = await auth.create_org()  # a write grant is for a server of the team's own org
    await register_stdio(reg_api, admin, name, org=org["id"])
    member = await auth.granted_member(name, ["read", "write"], org=org)
    writer = auth.bearer(member.key)
    path = f"/api/v1/sandbox/servers/{name}/allowed-hosts"
    for host in (
        "*",
        "*.*",
        "*.com",
        "127.0.0.1",
        "169.254.169.254:80",
        "2852039166",
        "0x7f000001",
        "0177.0.0.1:4222",
        "127.1",
        "10.0.0.5",
        "100.64.0.1",
        "[::1]:4222",
        "[::ffff:127.0.0.1]:4222",
        "[64:ff9b::a9fe:a9fe]:80",
        "[fd00::1]",
        "0.0.0.0",
    ):
        resp = await api.post(path, json={"hosts": [host]}, headers=writer)
        assert resp.status_code == 422, (host, resp.text)
        assert resp.json()["error"]["code"] == "VALIDATION_ERROR"
    asked = await api.post(path, json={"hosts": ["api.example.com"]}, headers=writer)
    assert asked.status_code == 202, asked.text
    assert asked.json()["hosts"] == []
    [pending] = asked.json()["requests"]
    assert (pending["subject"], pending["status"]) == ("api.example.com", "pending")
    listed = await api.get(path, headers=writer)
    assert listed.json()["hosts"] == []
    approved = await api.post(
        f"/api/v1/sandbox/approvals/network/{pending['id']}/action",
        json={"action": "approve"},
        headers=admin,
    )
    assert approved.status_code == 200
    assert (await api.get(path, headers=writer)).json()["hosts"] == ["api.example.com"]
    revoked = await api.post(
        f"/api/v1/sandbox/approvals/network/{pending['id']}/revoke", headers=admin
    )
    assert revoked.status_code == 200
    assert (await api.get(path, headers=writer)).json()["hosts"] == []


async def test_sandboxed_code_reaches_neither_nats_nor_metadata_nor_loopback_even_when_allowlisted(
    sandbox: Any,
    reg_api: httpx.AsyncClient,
    admin: dict,
    listener: tuple[int, list[str]],
) -> None:
    port, peers = listener
    rt = sandbox.state.runtime
    victim, secret = unique_name("victim"), f"sk-live-{secrets.token_hex(12)}"
    await register_stdio(reg_api, admin, victim, env={"API_TOKEN": secret})
    nats = urlsplit(rt.settings.nats_url)
    attacker = unique_name("attacker")
    legit = f"{ALLOWED_LOOPBACK}:{port}"
    targets = [
        f"169.254.169.254:{port}",
        f"2852039166:{port}",
        f"0x7f000001:{port}",
        f"localhost:{port}",
        f"[::ffff:127.0.0.1]:{port}",
        legit,
    ]
    await allow_directly(sandbox, attacker, [f"{nats.hostname}:{nats.port}", *targets])
    code = textwrap.dedent(PROBE)
    args = {
        "nats": f"{nats.hostname}:{nats.port}",
        "subject": rt.bus.subject(rpc.REGISTRY_SNAPSHOT),
        "victim": victim,
        "targets": targets,
    }
    result = await run_code(rt, RunRequest(code=code, args=args, server=attacker))
    assert result["outcome"] == "ok", result
    seen = result["result"]
    assert secret not in str(seen)
    assert seen["nats"].startswith("HTTP/1.1 403"), seen["nats"]
    for target in targets[:-1]:
        assert seen[target].startswith("HTTP/1.1 403"), (target, seen[target])
    assert seen[legit].endswith("ok"), seen[legit]  # an admin allowlisted this CIDR
    assert peers == [ALLOWED_LOOPBACK]


async def test_a_wildcard_of_everything_left_in_the_allowlist_opens_nothing(
    sandbox: Any, listener: tuple[int, list[str]]
) -> None:
    port, peers = listener
    attacker = unique_name("wild")
    await allow_directly(sandbox, attacker, ["*", "*:*", f"*:{port}"])
    code = textwrap.dedent(PROBE)
    target = f"{ALLOWED_LOOPBACK}:{port}"
    args = {"nats": None, "subject": "x", "victim": "x", "targets": [target]}
    result = await run_code(
        sandbox.state.runtime, RunRequest(code=code, args=args, server=attacker)
    )
    assert result["result"][target].startswith("HTTP/1.1 403"), result
    assert peers == []


async def proxied_get(path: Path, target: str) -> bytes:
    """CONNECT `target` through the proxy socket at `path`, then GET /; everything answered."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " in head.split(b"\r\n")[0]:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head += await reader.read()
    writer.close()
    return head


async def test_the_proxy_connects_to_the_address_it_checked_and_never_resolves_twice(
    tmp_path: Path, listener: tuple[int, list[str]]
) -> None:
    port, peers = listener
    lookups: list[str] = []

    async def rebinding(host: str, _: int) -> list[str]:
        """A name whose first answer passes the check and every later one is loopback."""
        lookups.append(host)
        return [ALLOWED_LOOPBACK] if len(lookups) == 1 else ["127.0.0.1"]

    async def anything(*_: Any) -> bool:
        return True

    async def ignore(*_: Any) -> None:
        return None

    guard = AddressGuard(allow=parse_networks([f"{ALLOWED_LOOPBACK}/32"]))
    proxy = EgressProxy(anything, ignore, guard, resolve=rebinding)
    path = await proxy.open_socket("k", "s", tmp_path / "p.sock", None)
    try:
        first = await proxied_get(path, f"rebind.example:{port}")
        second = await proxied_get(path, f"rebind.example:{port}")
    finally:
        await proxy.close()
    assert first.endswith(b"ok"), first
    assert second.startswith(b"HTTP/1.1 403"), second
    assert lookups == ["rebind.example", "rebind.example"]  # one lookup per connection
    assert peers == [ALLOWED_LOOPBACK]


async def test_a_name_with_one_internal_address_among_public_ones_is_refused(
    tmp_path: Path, listener: tuple[int, list[str]]
) -> None:
    port, peers = listener

    async def mixed(_: str, __: int) -> list[str]:
        return [ALLOWED_LOOPBACK, "169.254.169.254"]

    async def anything(*_: Any) -> bool:
        return True

    refusals: list[tuple] = []

    async def record(*args: Any) -> None:
        refusals.append(args)

    guard = AddressGuard(allow=parse_networks([f"{ALLOWED_LOOPBACK}/32"]))
    proxy = EgressProxy(anything, record, guard, resolve=mixed)
    path = await proxy.open_socket("k", "s", tmp_path / "p.sock", None)
    try:
        answer = await proxied_get(path, f"mixed.example:{port}")
    finally:
        await proxy.close()
    assert answer.startswith(b"HTTP/1.1 403"), answer
    assert peers == []
    assert refusals and "link-local" in refusals[0][3]
