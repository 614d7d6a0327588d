"""The two conformance upstreams as processes of their own, each on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from libs.devstack import proc as devstack_proc
from libs.devstack.harness import free_port
from tests.support import node

SERVERS = Path(__file__).with_name("servers")


@asynccontextmanager
async def _process(argv: list[str], port: int, env: dict[str, str]) -> AsyncIterator[str]:
    """Run argv until it accepts connections on `port`; yield its MCP URL, then stop it."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env={**os.environ, **env},
        cwd=devstack_proc.ROOT,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(30):
            while True:
                assert proc.returncode is None, f"{argv} exited with {proc.returncode}"
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                break
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        if proc.returncode is None:
            proc.terminate()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def ts_everything() -> contextlib.AbstractAsyncContextManager[str]:
    """The TypeScript SDK 1.x server (servers/everything.mjs) under Node 22."""
    node.installed()
    port = free_port()
    sdk = node.TS_SDK / "dist" / "esm"
    argv = [str(node.NODE22), str(SERVERS / "everything.mjs"), str(port)]
    return _process(argv, port, {"SDK_DIR": str(sdk)})


def python_everything() -> contextlib.AbstractAsyncContextManager[str]:
    """The Python SDK server (servers/everything.py)."""
    port = free_port()
    argv = [sys.executable, "-m", "tests.conformance.servers.everything", str(port)]
    return _process(argv, port, {})
