"""Auth and registry in one process for the benchmark; registers the upstream N times."""

import asyncio
import sys

from libs.devstack.harness import serving
from libs.devstack.harness.auth import admin_token, running_auth
from libs.devstack.harness.registry import registry_parts, registry_settings
from services.registry import refresh, servers
from services.registry.app import create_app as create_registry
from services.registry.schemas import ServerCreate


async def main(pg_url: str, nats_url: str, namespace: str, upstream: str, copies: int) -> None:
    """Start auth + registry, register `copies` servers, print the admin token, run."""
    settings = registry_settings(pg_url, nats_url, namespace)
    async with (
        running_auth(pg_url, nats_url, namespace) as auth,
        serving(create_registry(settings)),
        registry_parts(settings, "bench") as reg,
    ):
        for i in range(copies):
            body = ServerCreate(name=f"s{i:03d}", transport="streamable-http", url=upstream)
            async with reg.pool.acquire() as conn, conn.transaction():
                server = await servers.create(reg, conn, body, None, "bench")
            await refresh.refresh(reg, server["id"], "bench")
        print("TOKEN", await admin_token(auth.url), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
