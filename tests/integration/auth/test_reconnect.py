"""A revocation missed while NATS was away cannot outlive the reconnect in a Verifier's cache."""

import asyncio
import subprocess
from pathlib import Path

import asyncpg
import pytest

from libs.common import bus as busmod
from libs.common.authn import Verifier, hash_token
from libs.common.errors import ApiError, Unauthenticated
from libs.devstack import ports
from libs.devstack.harness import free_port, settings_for, until
from libs.devstack.nats import find_binary
from tests.integration.auth.conftest import ProbeSettings
from tests.support.auth import auth_service


class PrivateNats:
    """A nats-server of this test alone, restartable on the same port and store."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or restart) the server and wait until it listens."""
        binary = find_binary()
        assert binary is not None, "nats-server binary not found"
        argv = [str(binary), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert ports.wait_listening("127.0.0.1", self.port, timeout=10)

    def stop(self) -> None:
        """Stop the server and wait for it to exit."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


async def test_the_verifier_forgets_cached_principals_when_nats_comes_back(
    pg_url: str, namespace: str, tmp_path: Path
) -> None:
    server = PrivateNats(tmp_path / "nats")
    server.start()
    ns = namespace + "rc"
    try:
        async with auth_service(pg_url, server.url, ns) as auth:
            settings = settings_for(ProbeSettings, pg_url=pg_url, nats_url=server.url, namespace=ns)
            async with busmod.connect(settings) as bus:
                verifier = Verifier(bus)
                await verifier.start()
                came_back = asyncio.Event()

                async def mark() -> None:
                    came_back.set()

                bus.on_reconnect(mark)  # runs after the verifier's own hook
                user = await auth.create_user()
                key = await auth.api_key(user.token)
                assert (await verifier.verify(key)).user_id == user.id  # now cached

                server.stop()
                # revoked behind NATS's back: no event will ever tell the verifier
                conn = await asyncpg.connect(pg_url)
                try:
                    await conn.execute(
                        "UPDATE auth.api_keys SET revoked_at = now() WHERE key_hash = $1",
                        hash_token(key),
                    )
                finally:
                    await conn.close()
                assert (await verifier.verify(key)).user_id == user.id  # the cache still has it
                server.start()
                async with asyncio.timeout(10):
                    await came_back.wait()

                async def refused() -> bool:
                    try:
                        await verifier.verify(key)
                    except Unauthenticated:
                        return True
                    pytest.fail("the revoked key was served from the cache after reconnect")

                # ApiError: auth's own connection is not back yet
                await until(
                    refused, timeout=10, what="the revoked key refused", retry_on=(ApiError,)
                )
    finally:
        server.stop()
