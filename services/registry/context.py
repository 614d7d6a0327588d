"""What the registry's handlers, loops and RPC share: pool, bus, settings, secret box."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from libs.common import outbox, ssrf
from libs.common.bus import Bus
from libs.common.events import Event
from services.registry import config_keys
from services.registry.crypto import Sealed, SecretBox
from services.registry.settings import RegistrySettings
from services.registry.store import config as config_store

SCHEMA = "registry"


@dataclass
class Registry:
    """The service's shared parts."""

    pool: asyncpg.Pool
    bus: Bus
    settings: RegistrySettings
    box: SecretBox

    async def emit(self, conn: asyncpg.Connection, event: Event) -> None:
        """Enqueue an event in the caller's transaction."""
        await outbox.enqueue(conn, SCHEMA, event)

    async def config(self, conn: asyncpg.Connection, *, reveal: bool = False) -> dict[str, Any]:
        """Effective admin config: defaults overlaid with stored values (secrets if `reveal`)."""
        out = config_keys.defaults(self.settings)
        for row in await config_store.list_entries(conn):
            key = config_keys.KEYS.get(row["key"])
            if key is None:
                continue
            if key.secret:
                out[row["key"]] = (
                    self.box.open(
                        Sealed(row["nonce"], row["ciphertext"], row["key_id"]),
                        f"setting:{row['key']}",
                    )
                    if reveal and row["ciphertext"] is not None
                    else bool(row["ciphertext"])
                )
            else:
                out[row["key"]] = row["value"]
        return out

    async def allowlist(self, conn: asyncpg.Connection) -> list[ssrf.IPNetwork]:
        """The SSRF allowlist in force."""
        cfg = await self.config(conn)
        return ssrf.parse_networks(cfg.get("ssrf_allowlist") or [])
