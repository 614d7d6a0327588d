"""The official MCP conformance suite, both generations, directly and through the gateway.

Each suite runs twice against the same upstream: straight at it, and through nginx at
`/mcp/servers/{path}` (the gateway's one-server endpoint), one CLI run each, not one per
scenario. The upstream must pass every scenario directly, and the gateway every one it passes.

- npm @modelcontextprotocol/conformance 0.1.16, the session-based 2025 revisions (`--suite all`:
  the active scenarios and the two pending ones) against a TypeScript SDK 1.x server with an
  event store (servers/everything.mjs);
- 0.2.0-alpha.12 at 2026-07-28 (`--suite all --spec-version 2026-07-28`: the revision's 40
  scenarios, the pending ones included) against a Python SDK server (servers/everything.py).

Run only these: `make test-conformance` (or `.venv/bin/pytest tests/conformance`). The counts
are printed at the end of every run, `make test` included, e.g. `conformance 0.1.16: direct
32/32, gateway 32/32`; the CLI's per-scenario results stay in pytest's tmp dir (`direct/`,
`gateway/`, a `checks.json` per scenario).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest

from libs.devstack.stack import Stack
from tests.conformance.credential_proxy import credential_proxy
from tests.conformance.suite import SESSION_CLI, STATELESS_CLI, SuiteRun, run_suite
from tests.conformance.upstreams import python_everything, ts_everything
from tests.e2e.gateway_support import admin_token, api_key, bearer, modern, modern_headers

STATELESS_ARGS = ("--suite", "all", "--spec-version", "2026-07-28")


@pytest.fixture(scope="module")
async def admin_key(conformance_stack: Stack) -> AsyncIterator[tuple[str, str]]:
    """(admin JWT, admin API key) of the stack."""
    async with httpx.AsyncClient(base_url=conformance_stack.url, timeout=10) as api:
        token = await admin_token(api)
        yield token, await api_key(api, token)


async def _registered(stack: Stack, token: str, key: str, url: str) -> str:
    """Register `url` (Streamable HTTP) through nginx; its path, once the gateway lists tools."""
    name = f"conf{secrets.token_hex(3)}"
    body = {"name": name, "transport": "streamable-http", "url": url}
    async with httpx.AsyncClient(base_url=stack.url, timeout=10) as api:
        resp = await api.post("/api/v1/servers", json=body, headers=bearer(token))
        assert resp.status_code == 201, resp.text
        path = resp.json()["path"]
        listed = None
        for _ in range(200):  # the gateway learns of it from the registry's events
            listed = await api.post(
                f"/mcp/servers/{path}",
                json=modern("tools/list", {}),
                headers=modern_headers("tools/list", key),
            )
            if listed.status_code == 200 and listed.json()["result"]["tools"]:
                return path
            await asyncio.sleep(0.05)
    raise AssertionError(f"the gateway never listed the tools of /mcp/servers/{path}: {listed}")


async def _compare(
    label: str,
    stack: Stack,
    admin: tuple[str, str],
    upstream: Callable[[], AbstractAsyncContextManager[str]],
    cli: Path,
    args: tuple[str, ...],
    out: Path,
    record: Callable[[str, object], None],
) -> tuple[SuiteRun, SuiteRun]:
    """Run the suite at the upstream and through the gateway; record the counts, return both runs.

    The counts are printed at the end of the run."""
    token, key = admin
    async with upstream() as url:
        path = await _registered(stack, token, key, url)
        direct = await run_suite(cli, url, out / "direct", *args)
        async with credential_proxy(stack.url, key) as proxy:
            gateway = await run_suite(cli, f"{proxy}/mcp/servers/{path}", out / "gateway", *args)
    record(
        "summary",
        f"conformance {label}: direct {len(direct.passed)}/{direct.announced}, "
        f"gateway {len(gateway.passed)}/{gateway.announced}",
    )
    return direct, gateway


def _check(direct: SuiteRun, gateway: SuiteRun) -> None:
    """The upstream passes every scenario, and the gateway every one the upstream passes."""
    missed = set(direct.failures) - direct.passed
    assert direct.announced == len(direct.failures) and not missed, (
        f"the upstream itself fails {direct.announced - len(direct.passed)} of "
        f"{direct.announced} scenarios:\n{direct.describe(missed)}"
    )
    regressed = direct.passed - gateway.passed
    assert not regressed, (
        f"{len(regressed)} scenarios pass directly but fail through the gateway: "
        f"{', '.join(sorted(regressed))}\n{gateway.describe(regressed)}"
    )


async def test_the_gateway_passes_every_session_era_scenario_a_typescript_upstream_passes(
    conformance_stack: Stack,
    admin_key: tuple[str, str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    direct, gateway = await _compare(
        "0.1.16",
        conformance_stack,
        admin_key,
        ts_everything,
        SESSION_CLI,
        ("--suite", "all"),
        tmp_path,
        record_property,
    )
    _check(direct, gateway)


async def test_the_gateway_passes_every_2026_07_28_scenario_a_python_upstream_passes(
    conformance_stack: Stack,
    admin_key: tuple[str, str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    direct, gateway = await _compare(
        "0.2.0-alpha.12 at 2026-07-28",
        conformance_stack,
        admin_key,
        python_everything,
        STATELESS_CLI,
        STATELESS_ARGS,
        tmp_path,
        record_property,
    )
    _check(direct, gateway)
