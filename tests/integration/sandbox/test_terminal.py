"""/ws/terminal: off by default, admins only, a shell inside a sandbox, every session audited."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.integration.sandbox.conftest import EventTap


def ws_url(sandbox: Any) -> str:
    """The terminal's WebSocket URL."""
    return sandbox.url.replace("http://", "ws://") + "/ws/terminal"


async def set_terminal(api: httpx.AsyncClient, admin: dict, enabled: bool) -> None:
    """Turn the terminal on or off in the policy."""
    resp = await api.patch(
        "/api/v1/sandbox/policy", json={"terminal_enabled": enabled}, headers=admin
    )
    assert resp.status_code == 200


async def test_the_terminal_is_refused_while_the_policy_keeps_it_off(
    sandbox: Any, api: httpx.AsyncClient, admin: dict
) -> None:
    await set_terminal(api, admin, False)
    with pytest.raises(InvalidStatus) as err:
        async with connect(ws_url(sandbox), additional_headers=admin):
            pass
    assert err.value.response.status_code == 403


async def test_only_platform_admins_get_a_terminal(
    sandbox: Any, api: httpx.AsyncClient, admin: dict, auth: Any
) -> None:
    await set_terminal(api, admin, True)
    user = await auth.create_user()
    try:
        with pytest.raises(InvalidStatus) as err:
            async with connect(ws_url(sandbox), additional_headers=auth.bearer(user.token)):
                pass
        assert err.value.response.status_code == 403
    finally:
        await set_terminal(api, admin, False)


async def test_an_admin_shell_runs_sandboxed_in_the_workspace_and_is_audited(
    sandbox: Any, api: httpx.AsyncClient, admin: dict, events: EventTap
) -> None:
    await set_terminal(api, admin, True)
    marker = secrets.token_hex(4)
    try:
        async with connect(ws_url(sandbox), additional_headers=admin) as ws:
            await ws.send(
                f"echo {marker} > /work/{marker}.txt; id -u; hostname; echo done-$((6*7))\n"
            )
            seen = ""
            async with asyncio.timeout(10):
                while "done-42" not in seen:
                    seen += str(await ws.recv())
            assert "65534" in seen
            assert "sandbox" in seen
            await ws.send("exit\n")
    finally:
        await set_terminal(api, admin, False)
    root = sandbox.state.runtime.workspace.root
    assert (root / f"{marker}.txt").read_text() == f"{marker}\n"
    opened = await events.wait_for(lambda e: e["type"] == "sandbox.terminal.opened")
    closed = await events.wait_for(
        lambda e: (
            e["type"] == "sandbox.terminal.closed"
            and e["data"]["session"] == opened["data"]["session"]
        )
    )
    assert closed["data"]["input_bytes"] > 0
    assert closed["actor"] is not None


async def test_another_site_s_page_gets_no_terminal_even_with_an_admin_s_cookie(
    sandbox: Any, api: httpx.AsyncClient, admin: dict
) -> None:
    await set_terminal(api, admin, True)
    try:
        for origin in ("https://evil.example", "null"):
            headers = {**admin, "Origin": origin}
            with pytest.raises(InvalidStatus) as err:
                async with connect(ws_url(sandbox), additional_headers=headers):
                    pass
            assert err.value.response.status_code == 403, origin
        page = {**admin, "Origin": "http://localhost:8080"}  # the public URL's own pages
        async with connect(ws_url(sandbox), additional_headers=page) as ws:
            await ws.send("echo page-$((6*7))\n")
            seen = ""
            async with asyncio.timeout(10):
                while "page-42" not in seen:
                    seen += str(await ws.recv())
            await ws.send("exit\n")
    finally:
        await set_terminal(api, admin, False)


async def read_until(ws: Any, marker: str) -> str:
    """Terminal output up to and including `marker`."""
    seen = ""
    async with asyncio.timeout(10):
        while marker not in seen:
            seen += str(await ws.recv())
    return seen


async def test_the_mcphubs_terminal_url_takes_the_token_and_size_and_resizes(
    sandbox: Any, api: httpx.AsyncClient, admin: dict
) -> None:
    await set_terminal(api, admin, True)
    token = admin["Authorization"].split(" ", 1)[1]
    base = sandbox.url.replace("http://", "ws://") + "/api/v1/terminal/ws"
    try:
        async with connect(f"{base}?token={token}&cols=120&rows=30") as ws:
            await ws.send("echo size-$(stty size | tr ' ' x)-end\n")
            assert "size-30x120-end" in await read_until(ws, "x120-end")
            await ws.send('{"type":"resize","cols":100,"rows":40}')
            await ws.send("echo size-$(stty size | tr ' ' x)-end\n")
            assert "size-40x100-end" in await read_until(ws, "x100-end")
            await ws.send("exit\n")
        for bad in (f"?token={token}&cols=0", f"?token={token}&rows=abc", "?token=sbk_nope"):
            with pytest.raises(InvalidStatus) as err:
                async with connect(base + bad):
                    pass
            assert err.value.response.status_code in (400, 401, 403), bad
    finally:
        await set_terminal(api, admin, False)
