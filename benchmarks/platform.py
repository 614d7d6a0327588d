"""Auth and registry in one process for the benchmark; registers the upstream N times."""

import asyncio
import sys

from libs.common import bus as busmod
from libs.common import db
from services.registry import refresh, servers
from services.registry.app import create_app as create_registry
from services.registry.context import Registry
from services.registry.crypto import SecretBox
from services.registry.schemas import ServerCreate
from tests.integration.registry.conftest import MASTER_KEY, registry_settings
from tests.support import serving
from tests.support.auth import auth_service


async def main(pg_url: str, nats_url: str, namespace: str, upstream: str, copies: int) -> None:
    """Start auth + registry, register `copies` servers, print the admin token, run."""
    settings = registry_settings(pg_url, nats_url, namespace)
    async with (
        auth_service(pg_url, nats_url, namespace) as auth,
        serving(create_registry(settings)),
        db.open_pool(settings) as pool,
        busmod.connect(settings, name="bench") as bus,
    ):
        reg = Registry(
            pool=pool, bus=bus, settings=settings, box=SecretBox.from_base64(MASTER_KEY, "k1")
        )
        for i in range(copies):
            body = ServerCreate(name=f"s{i:03d}", transport="streamable-http", url=upstream)
            async with pool.acquire() as conn, conn.transaction():
                server = await servers.create(reg, conn, body, None, "bench")
            await refresh.refresh(reg, server["id"], "bench")
        print("TOKEN", await auth.admin_token(), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
