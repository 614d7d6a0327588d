"""Master-key rotation: several keys loaded, the first seals, re-encryption rewrites old values."""

from __future__ import annotations

import base64
import os
from typing import Any

import httpx
import pytest

from libs.common.rpc_types import SnapshotRequest
from libs.devstack.harness import serving
from libs.devstack.harness.registry import MASTER_KEY, registry_settings
from services.registry.app import create_app
from services.registry.context import Registry
from services.registry.crypto import MasterKeyError, SecretBox
from services.registry.rpc import snapshot

NEW_KEY = base64.b64encode(os.urandom(32)).decode()


async def test_reencrypt_rewrites_every_value_under_the_first_key(
    api: Any, reg: Registry, pg_url: str, nats_url: str, namespace: str, auth: Any
) -> None:
    # the session's database is shared with other tests: whatever happens, seal everything
    # under k1 again afterwards, or every later test's registry could not open its secrets
    try:
        body = {
            "name": "files",
            "transport": "stdio",
            "command": "npx",
            "env": {"TOKEN": "t0ken"},
            "enabled": False,
        }
        assert (await api.post("/api/v1/servers", json=body)).status_code == 201
        resp = await api.put("/api/v1/settings/llm_api_key", json={"value": "sk-old"})
        assert resp.status_code == 200
        src = {"name": "lib", "url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "h3ader"}}
        assert (await api.post("/api/v1/servers/files/sources", json=src)).status_code == 201

        rotated = registry_settings(
            pg_url, nats_url, namespace, REGISTRY_MASTER_KEYS=f"k2:{NEW_KEY},k1:{MASTER_KEY}"
        )
        async with serving(create_app(rotated)) as url:
            headers = dict(api.headers)
            async with httpx.AsyncClient(base_url=url, headers=headers, timeout=20) as rot:
                # old values still open, new ones are sealed under k2
                resp = await rot.put("/api/v1/servers/files/secrets/NEW", json={"value": "n"})
                assert resp.status_code == 200
                keys = {
                    s["key"]: s["key_id"]
                    for s in (await rot.get("/api/v1/servers/files/secrets")).json()["items"]
                }
                assert keys == {"NEW": "k2", "TOKEN": "k1"}

                user = await auth.create_user()
                plain = {"Authorization": f"Bearer {user.token}"}
                denied = await rot.post("/api/v1/settings/secrets/reencrypt", headers=plain)
                assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"

                resp = await rot.post("/api/v1/settings/secrets/reencrypt")
                assert resp.status_code == 200, resp.text
                assert resp.json() == {
                    "key_id": "k2",
                    "rewritten": {"secrets": 1, "settings": 1, "sources": 1},
                }
                again = await rot.post("/api/v1/settings/secrets/reencrypt")
                assert again.json()["rewritten"] == {"secrets": 0, "settings": 0, "sources": 0}

        # only the new key is needed now: everything opens without k1
        only_new = Registry(
            pool=reg.pool,
            bus=reg.bus,
            settings=reg.settings,
            box=SecretBox.from_keyring([f"k2:{NEW_KEY}"]),
        )
        snap = await snapshot(only_new, SnapshotRequest(names=["files"]))
        server = snap.servers[0]
        assert server.env == {"TOKEN": "t0ken", "NEW": "n"}
        assert server.tools == []
        async with reg.pool.acquire() as conn:
            cfg = await only_new.config(conn, reveal=True)
            assert cfg["llm_api_key"] == "sk-old"
            kids = await conn.fetch(
                "SELECT key_id FROM registry.secrets UNION ALL"
                " SELECT key_id FROM registry.settings WHERE ciphertext IS NOT NULL UNION ALL"
                " SELECT key_id FROM registry.sources WHERE ciphertext IS NOT NULL"
            )
        assert {r["key_id"] for r in kids} == {"k2"}
    finally:
        back = registry_settings(
            pg_url, nats_url, namespace, REGISTRY_MASTER_KEYS=f"k1:{MASTER_KEY},k2:{NEW_KEY}"
        )
        async with serving(create_app(back)) as url:
            async with httpx.AsyncClient(base_url=url, headers=dict(api.headers)) as restore:
                resp = await restore.post("/api/v1/settings/secrets/reencrypt")
                assert resp.status_code == 200, resp.text


def test_a_keyring_seals_with_the_first_key_and_opens_with_any() -> None:
    old = SecretBox.from_keyring([f"k1:{MASTER_KEY}"])
    ring = SecretBox.from_keyring([f"k2:{NEW_KEY}", f"k1:{MASTER_KEY}"])
    sealed = old.seal("v", "aad")
    assert ring.open(sealed, "aad") == "v"
    assert ring.seal("v", "aad").key_id == "k2"
    resealed = ring.reseal(sealed, "aad")
    assert resealed is not None and resealed.key_id == "k2" and ring.reseal(resealed, "aad") is None
    for bad in (["k1"], [f"k1:{MASTER_KEY}", f"k1:{NEW_KEY}"], ["k1:bm90LWEta2V5"]):
        with pytest.raises(MasterKeyError):
            SecretBox.from_keyring(bad)
