"""The npm test peers (tests/node, pinned by its lock file, installed by `make test-peers`)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from libs.devstack import peers

NODE_MODULES = peers.PEERS_DIR / "node_modules"
NODE22 = peers.node_binary()
SCOPE = NODE_MODULES / "@modelcontextprotocol"
TS_SDK = SCOPE / "sdk"
SERVER_EVERYTHING = SCOPE / "server-everything" / "dist" / "index.js"


def installed() -> Path:
    """NODE_MODULES, failing the test with the command to run when the peers are missing."""
    stamp = NODE_MODULES / ".installed"
    assert stamp.exists(), "the npm test peers are missing: run `make test-peers`"
    return NODE_MODULES


def system_node() -> str:
    """The machine's `node` (what hosted stdio servers find inside the sandbox, under /usr)."""
    found = shutil.which("node")
    assert found, "node is needed (Debian's nodejs)"
    return found


TS_SERVER = peers.PEERS_DIR / "ts_server.mjs"


@asynccontextmanager
async def ts_server(*flags: str) -> AsyncIterator[str]:
    """Run tests/node/ts_server.mjs (TypeScript SDK 1.x) on a free port; yield its base URL.

    flags: `--json` (JSON responses, no SSE), `--no-event-store` (no priming, no resumption),
    `--stateless` (no sessions: a server per request), `--name NAME`. Its Streamable HTTP
    endpoint is `<base>/mcp`, its HTTP+SSE one `<base>/sse`.
    """
    installed()
    proc = await asyncio.create_subprocess_exec(
        str(NODE22),
        str(TS_SERVER),
        "0",
        *flags,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=str(peers.PEERS_DIR),
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            line = (await proc.stdout.readline()).decode()
        assert line.startswith("listening "), f"ts_server.mjs did not start: {line!r}"
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


SDK_CLIENT = peers.PEERS_DIR / "sdk_client.mjs"


async def run_sdk_client(
    url: str, key: str, transport: str, plan: list[dict[str, Any]]
) -> dict[str, Any]:
    """Run tests/node/sdk_client.mjs (the TypeScript SDK client) against `url` with an API key.

    transport: `streamable` or `sse`; plan: the calls, `{"key", "name", "arguments",
    "progress"}`. Returns its report (`sessionId`, `protocolVersion`, `tools`, `calls`), or
    `{"failure": ...}` with the end of its stderr when it did not finish.
    """
    installed()
    proc = await asyncio.create_subprocess_exec(
        str(NODE22),
        str(SDK_CLIENT),
        url,
        key,
        transport,
        cwd=str(peers.PEERS_DIR),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(60):
            out, err = await proc.communicate(json.dumps(plan).encode())
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0 or not out.strip():
        return {"failure": f"exit {proc.returncode}: {err.decode()[-2000:]}"}
    return json.loads(out.splitlines()[-1])
