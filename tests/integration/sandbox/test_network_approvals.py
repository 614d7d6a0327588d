"""Network approvals: a refused host becomes a pending request; approving it opens the way."""

from __future__ import annotations

import asyncio
import os
import textwrap
from typing import Any

import httpx

from services.sandbox.execution import RunRequest, run_code
from tests.integration.sandbox.conftest import ALLOWED_LOOPBACK, register_stdio

FETCH = """
import urllib.request, urllib.error
def main(url):
    try:
        return urllib.request.urlopen(url, timeout=5).read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code
"""


async def ok_server() -> tuple[asyncio.Server, str]:
    """An HTTP server on the allowed loopback answering `ok` to one request a connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, ALLOWED_LOOPBACK, 0)
    return server, f"http://{ALLOWED_LOOPBACK}:{server.sockets[0].getsockname()[1]}/"


async def fetch(sandbox: Any, server: str, url: str) -> Any:
    """Fetch `url` from inside a sandbox whose egress is `server`'s."""
    req = RunRequest(code=textwrap.dedent(FETCH), args={"url": url}, server=server)
    result = await run_code(sandbox.state.runtime, req)
    assert result["outcome"] == "ok", result
    return result["result"]


async def test_approving_a_refused_host_allows_it_and_revoking_blocks_it_again(
    sandbox: Any, api: httpx.AsyncClient, reg_api: httpx.AsyncClient, admin: dict
) -> None:
    server, url = await ok_server()
    name = f"net-{os.urandom(3).hex()}"
    await register_stdio(reg_api, admin, name, enabled=False)  # its allowlist is its org's
    try:
        assert await fetch(sandbox, name, url) == 403
        pending = await api.get(
            "/api/v1/sandbox/approvals/network", params={"status": "pending"}, headers=admin
        )
        request = next(a for a in pending.json()["items"] if a["server"] == name)
        assert request["subject"] == ALLOWED_LOOPBACK
        assert await fetch(sandbox, name, url) == 403
        again = await api.get(
            "/api/v1/sandbox/approvals/network", params={"status": "pending"}, headers=admin
        )
        assert len([a for a in again.json()["items"] if a["server"] == name]) == 1
        approved = await api.post(
            f"/api/v1/sandbox/approvals/network/{request['id']}/action",
            json={"action": "approve"},
            headers=admin,
        )
        assert approved.status_code == 200
        hosts = await api.get(f"/api/v1/sandbox/servers/{name}/allowed-hosts", headers=admin)
        assert hosts.json()["hosts"] == [ALLOWED_LOOPBACK]
        assert await fetch(sandbox, name, url) == "ok"
        revoked = await api.post(
            f"/api/v1/sandbox/approvals/network/{request['id']}/revoke", headers=admin
        )
        assert revoked.status_code == 200
        assert await fetch(sandbox, name, url) == 403
    finally:
        server.close()


async def test_allowed_hosts_are_added_and_removed_with_validation(
    api: httpx.AsyncClient, reg_api: httpx.AsyncClient, admin: dict
) -> None:
    name = f"hosts-{os.urandom(3).hex()}"
    await register_stdio(reg_api, admin, name, enabled=False)
    path = f"/api/v1/sandbox/servers/{name}/allowed-hosts"
    added = await api.post(path, json={"hosts": ["API.example.com", "*.pypi.org"]}, headers=admin)
    assert added.status_code == 201
    assert added.json()["hosts"] == ["*.pypi.org", "api.example.com"]
    bad = await api.post(path, json={"hosts": ["http://evil/"]}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "VALIDATION_ERROR"
    empty = await api.post(path, json={"hosts": []}, headers=admin)
    assert empty.status_code == 422
    removed = await api.request("DELETE", path, json={"hosts": ["api.example.com"]}, headers=admin)
    assert removed.status_code == 200
    assert removed.json()["hosts"] == ["*.pypi.org"]
    by_query = await api.delete(path, params={"host": "*.pypi.org"}, headers=admin)
    assert by_query.json()["hosts"] == []
