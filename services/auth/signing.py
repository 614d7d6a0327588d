"""JWT signing keys (Ed25519): generated at first start, encrypted at rest, rotated on demand."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import jwt
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from jwt.algorithms import OKPAlgorithm

from libs.common import outbox
from libs.common.authn import JWT_AUDIENCE, JWT_ISSUER
from libs.common.errors import Unavailable
from libs.common.events import SIGNING_KEY_CREATED, SIGNING_KEY_ROTATED, SigningKeyChanged
from services.auth.store import signing_keys as store

log = structlog.get_logger()

ALGORITHM = "EdDSA"


class KeyStore:
    """Signs access tokens with the active key and lists the keys that still verify."""

    def __init__(self, secret: str, access_ttl_s: int) -> None:
        self._aead = AESGCM(hashlib.sha256(secret.encode()).digest()) if secret else None
        self.access_ttl_s = access_ttl_s
        self._private: dict[str, Ed25519PrivateKey] = {}

    def _seal(self, raw: bytes) -> tuple[bytes, bool]:
        """Encrypt a private key when a secret is configured."""
        if self._aead is None:
            return raw, False
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, raw, b"switchboard-signing-key"), True

    def _open(self, blob: bytes, encrypted: bool) -> Ed25519PrivateKey:
        """Decrypt and load a stored private key."""
        if encrypted:
            if self._aead is None:
                log.error("signing_key_sealed", reason="AUTH_KEY_ENCRYPTION_SECRET is not set")
                raise Unavailable(
                    "Sign-in is unavailable: the signing key is encrypted and no key "
                    "encryption secret is configured."
                )
            try:
                blob = self._aead.decrypt(blob[:12], blob[12:], b"switchboard-signing-key")
            except InvalidTag:
                # another AUTH_KEY_ENCRYPTION_SECRET than the one that sealed the stored key
                log.error("signing_key_sealed", reason="the key encryption secret does not open it")
                raise Unavailable(
                    "Sign-in is unavailable: the configured key encryption secret does not open "
                    "the stored signing key."
                ) from None
        return Ed25519PrivateKey.from_private_bytes(blob)

    async def _create(self, conn: asyncpg.Connection) -> tuple[str, Ed25519PrivateKey]:
        """Generate and store a new key (caller holds the transaction)."""
        key = Ed25519PrivateKey.generate()
        kid = f"k{int(time.time())}-{secrets.token_hex(4)}"
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        blob, encrypted = self._seal(raw)
        jwk = OKPAlgorithm.to_jwk(key.public_key(), as_dict=True)
        jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
        await store.insert(conn, kid, blob, encrypted, jwk)
        self._private[kid] = key
        return kid, key

    async def ensure(self, pool: asyncpg.Pool) -> str:
        """Create the first key unless one exists (one replica at a time); returns its kid."""
        async with pool.acquire() as conn, conn.transaction():
            await store.lock_first_key(conn)
            row = await store.get_active(conn)
            if row is not None:
                if not row["encrypted"] and self._aead is not None:
                    log.warning("signing_key_unencrypted", kid=row["kid"])
                return row["kid"]
            kid, _ = await self._create(conn)
            await outbox.enqueue(
                conn, "auth", SIGNING_KEY_CREATED.event(SigningKeyChanged(kid), source="auth")
            )
        if self._aead is None:
            log.warning("signing_key_stored_unencrypted", hint="set AUTH_KEY_ENCRYPTION_SECRET")
        log.info("signing_key_created", kid=kid)
        return kid

    async def rotate(self, conn: asyncpg.Connection, actor: str | None) -> dict[str, Any]:
        """Make a new key active; older keys keep verifying for one access-token lifetime."""
        previous = await store.get_active(conn)
        kid, _ = await self._create(conn)
        await store.retire_all_except(conn, kid)
        prev = previous["kid"] if previous else None
        await outbox.enqueue(
            conn,
            "auth",
            SIGNING_KEY_ROTATED.event(SigningKeyChanged(kid, prev), source="auth", actor=actor),
        )
        return {"kid": kid, "previous": prev}

    async def sign(self, conn: asyncpg.Connection, claims: dict[str, Any]) -> str:
        """Sign an access token with the active key."""
        row = await store.get_active(conn)
        if row is None:
            raise RuntimeError("no active signing key")
        kid = row["kid"]
        key = self._private.get(kid)
        if key is None:
            key = self._private[kid] = self._open(row["private_key"], row["encrypted"])
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid})

    def access_claims(self, user_id: str, session_id: str) -> dict[str, Any]:
        """The claims of a new access token."""
        now = int(time.time())
        return {
            "iss": JWT_ISSUER,
            "aud": JWT_AUDIENCE,
            "sub": user_id,
            "sid": session_id,
            "typ": "access",
            "iat": now,
            "exp": now + self.access_ttl_s,
            "jti": str(uuid.uuid4()),
        }

    async def jwks(self, conn: asyncpg.Connection) -> dict[str, Any]:
        """Every public key that may still verify a live token."""
        since = datetime.now(UTC) - timedelta(seconds=self.access_ttl_s + 60)
        rows = await store.list_verifying(conn, since)
        return {"keys": [dict(r["public_jwk"]) for r in rows]}
