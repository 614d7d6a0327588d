"""A Postgres cluster of a test's own, that it may crash and restart on the same port."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from libs.devstack import postgres


class PrivatePostgres:
    """A cluster restarted on the same port (clients find it again).

    A commit the client saw survives `pg_ctl stop -m immediate` (synchronous_commit on)."""

    def __init__(self, base: Path) -> None:
        self.base = base  # a directory the unprivileged user can reach: the cluster runs as it
        self.port: int | None = None
        self.server: postgres.Postgres | None = None

    @property
    def url(self) -> str:
        """The URL of its `postgres` database (the same while it is down and after a restart)."""
        assert self.port is not None, "postgres was never started"
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def start(self) -> None:
        """Start it (initialising on first use); pg_ctl waits until it accepts connections."""
        self.server = await asyncio.to_thread(
            postgres.start_cluster, self.base, self.port, durable_commits=True
        )
        self.port = urlsplit(self.server.url).port

    async def stop(self, mode: str = "fast") -> None:
        """Stop it (`immediate`: every backend dies at once, no checkpoint, like a crash)."""
        if self.server is not None:
            await asyncio.to_thread(self.server.stop, mode)
            self.server = None
