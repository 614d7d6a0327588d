"""Master-key rotation: rewrite every sealed value under the current key, in one transaction."""

from __future__ import annotations

import asyncpg
import structlog

from libs.common.errors import Unprocessable
from services.registry import sources, views
from services.registry.context import Registry
from services.registry.crypto import MasterKeyError, Sealed
from services.registry.store import config as config_store
from services.registry.store import secrets as secrets_store
from services.registry.store import sources as sources_store

log = structlog.get_logger()


async def reencrypt(reg: Registry, conn: asyncpg.Connection) -> dict[str, object]:
    """Reseal secrets, secret settings and source headers not under the current key."""
    box = reg.box
    counts = {"secrets": 0, "settings": 0, "sources": 0}
    try:
        for row in await secrets_store.list_not_under(conn, box.key_id):
            aad = views.secret_aad(row["server_id"], row["kind"], row["key"])
            sealed = box.reseal(Sealed(row["nonce"], row["ciphertext"], row["key_id"]), aad)
            if sealed is not None:
                await secrets_store.reseal_secret(
                    conn, row["server_id"], row["kind"], row["key"], sealed
                )
                counts["secrets"] += 1
        for row in await config_store.list_not_under(conn, box.key_id):
            aad = f"setting:{row['key']}"
            sealed = box.reseal(Sealed(row["nonce"], row["ciphertext"], row["key_id"]), aad)
            if sealed is not None:
                await config_store.reseal_entry(conn, row["key"], sealed)
                counts["settings"] += 1
        for row in await sources_store.list_not_under(conn, box.key_id):
            aad = sources.aad(row["id"])
            sealed = box.reseal(Sealed(row["nonce"], row["ciphertext"], row["key_id"]), aad)
            if sealed is not None:
                await sources_store.reseal_headers(conn, row["id"], sealed)
                counts["sources"] += 1
    except MasterKeyError as exc:
        # a value sealed under a key that is no longer configured: nothing is rewritten
        raise Unprocessable(
            "A stored value is sealed under a master key that is not configured.",
            details={"fields": {"REGISTRY_MASTER_KEYS": str(exc)}},
        ) from None
    log.info("secrets_reencrypted", key_id=box.key_id, **counts)
    return {"key_id": box.key_id, "rewritten": counts}
