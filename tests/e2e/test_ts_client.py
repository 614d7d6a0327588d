"""The TypeScript SDK (npm) through nginx with an API key: list, call, progress, list-changed."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from libs.devstack.stack import Stack
from tests.e2e.gateway_support import admin_token, api_key, bearer, register, wait_listed
from tests.integration.gateway.conftest import calculator
from tests.integration.gateway.upstreams import rich
from tests.support import node
from tests.support.upstreams import run_upstream

SCRIPT = Path(__file__).with_name("ts_client.mjs")


@pytest.fixture(scope="session")
def ts_sdk() -> Path:
    """The TypeScript SDK's ESM dir, from the pinned npm test peers."""
    node.installed()
    return node.TS_SDK / "dist" / "esm"


@pytest.fixture(scope="module")
async def rich_server(e2e_stack: Stack) -> AsyncIterator[tuple[str, str, str]]:
    """A `rich` upstream registered through nginx; yields (server, admin JWT, admin API key)."""
    async with (
        run_upstream(rich()) as url,
        httpx.AsyncClient(base_url=e2e_stack.url, timeout=10) as api,
    ):
        token = await admin_token(api)
        key = await api_key(api, token)
        name = f"ts{secrets.token_hex(3)}"
        await register(api, token, name, url)
        for replica in [r for r in e2e_stack.replicas_of("gateway") if r.alive()]:
            await wait_listed(api, replica.url, key, f"{name}__add")
        yield name, token, key


async def test_the_typescript_sdk_client_lists_calls_and_hears_list_changed_through_nginx(
    e2e_stack: Stack, ts_sdk: Path, rich_server: tuple[str, str, str]
) -> None:
    name, token, key = rich_server
    client = await asyncio.create_subprocess_exec(
        str(node.NODE22),
        *[str(SCRIPT), f"{e2e_stack.url}/mcp", key, name],
        env={**os.environ, "SDK_DIR": str(ts_sdk)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert client.stdout is not None and client.stderr is not None
    try:
        async with asyncio.timeout(60):
            first = await client.stdout.readline()
            assert first, (await client.stderr.read()).decode()
            report = json.loads(first)
            late = f"ts{secrets.token_hex(3)}"
            async with (
                run_upstream(calculator(late)) as url,
                httpx.AsyncClient(base_url=e2e_stack.url, timeout=10) as api,
            ):
                await register(api, token, late, url)  # the registry change
                second = json.loads(await client.stdout.readline())
                await api.delete(f"/api/v1/servers/{late}", headers=bearer(token))
            await client.wait()
    finally:
        if client.returncode is None:
            client.kill()
            await client.wait()
    assert report["server"]["name"] == "switchboard-gateway"
    assert report["sessionId"]  # the TS SDK speaks a session-based revision: the legacy path
    assert {f"{name}__add", f"{name}__progress"} <= set(report["tools"])
    assert report["result"]["structuredContent"] == {"result": 42}
    assert report["stepped"]["isError"] is not True
    assert report["progress"] == [1, 2, 3]
    assert report["error"]["code"] == -32602  # unknown tool: a JSON-RPC error, not a crash
    assert second == {"listChanged": True}
    assert client.returncode == 0
