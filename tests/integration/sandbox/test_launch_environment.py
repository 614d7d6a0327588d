"""A server's env: loader and interpreter variables are refused, no value leaks on the way in."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx

from libs.common.bus import Bus
from tests.integration.sandbox.conftest import register_stdio, unique_name
from tests.integration.sandbox.test_hosted_servers import call, structured

REFUSED = {
    "LD_PRELOAD": "/work/evil.so",
    "LD_LIBRARY_PATH": "/work",
    "GLIBC_TUNABLES": "glibc.malloc.mxfast=1",
    "PYTHONHOME": "/work/home",
    "PYTHONPATH": "/work",
    "PYTHONSTARTUP": "/work/evil.py",
    "PYTHONINSPECT": "1",
    "NODE_OPTIONS": "--require /work/evil.js",
    "BASH_ENV": "/work/evil.sh",
    "SWITCHBOARD_CONFINE": "{}",
}


async def test_the_registry_refuses_loader_and_interpreter_variables_in_a_servers_env(
    reg_api: httpx.AsyncClient, admin: dict
) -> None:
    for name, value in REFUSED.items():
        body = {
            "name": unique_name("envy"),
            "transport": "stdio",
            "command": "python3",
            "env": {name: value},
        }
        created = await reg_api.post("/api/v1/servers", json=body, headers=admin)
        assert created.status_code == 422, (name, created.text)
        assert created.json()["error"]["code"] == "VALIDATION_ERROR"
    server = unique_name("envy")
    await register_stdio(reg_api, admin, server, env={"GREETING": "hello"})
    patched = await reg_api.patch(
        f"/api/v1/servers/{server}", json={"env": {"LD_AUDIT": "/work/a.so"}}, headers=admin
    )
    assert patched.status_code == 422, patched.text
    created = await reg_api.post(
        f"/api/v1/servers/{server}/secrets",
        json={"key": "PYTHONHOME", "value": "/work/home", "kind": "env"},
        headers=admin,
    )
    assert created.status_code == 422, created.text
    put = await reg_api.put(
        f"/api/v1/servers/{server}/secrets/LD_PRELOAD",
        json={"value": "/work/evil.so", "kind": "env"},
        headers=admin,
    )
    assert put.status_code == 422, put.text
    header = await reg_api.put(
        f"/api/v1/servers/{server}/secrets/X-Ld-Preload",
        json={"value": "a header may be named anything", "kind": "header"},
        headers=admin,
    )
    assert header.status_code == 200, header.text


def host_command_lines() -> str:
    """Every host process's command line, as any local user may read them."""
    seen = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                seen.append((entry / "cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                continue
    return "\n".join(seen)


async def test_a_hosted_servers_secret_env_is_on_no_host_command_line(
    sandbox: Any, reg_api: httpx.AsyncClient, admin: dict, bus: Bus
) -> None:
    name, secret = unique_name("argv"), f"tok-{secrets.token_hex(16)}"
    await register_stdio(reg_api, admin, name, env={"API_TOKEN": secret})
    assert structured(await call(bus, name, "getenv", {"name": "API_TOKEN"})) == secret
    assert sandbox.state.runtime.manager.running(name)
    assert secret not in host_command_lines()
