"""AES-GCM encryption of upstream secrets under the master key, with the key id stored."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MASK = "********"


class MasterKeyError(ValueError):
    """The master key is missing or not base64 of 32 bytes."""


class SecretUnreadable(MasterKeyError):
    """A stored value does not open with the configured keys (wrong or missing master key)."""


@dataclass(frozen=True)
class Sealed:
    """An encrypted value: nonce, ciphertext (with tag) and the id of the key used."""

    nonce: bytes
    ciphertext: bytes
    key_id: str


@dataclass(frozen=True)
class SecretBox:
    """Encrypts and decrypts with the current key; older keys decrypt what they sealed."""

    key_id: str
    keys: dict[str, bytes] = field(repr=False)

    @classmethod
    def from_base64(cls, key_b64: str, key_id: str) -> SecretBox:
        """Build from REGISTRY_MASTER_KEY (base64 of 32 bytes)."""
        try:
            raw = base64.b64decode(key_b64, validate=True)
        except (binascii.Error, ValueError):
            raise MasterKeyError("REGISTRY_MASTER_KEY must be base64") from None
        if len(raw) != 32:
            raise MasterKeyError("REGISTRY_MASTER_KEY must decode to 32 bytes")
        return cls(key_id=key_id, keys={key_id: raw})

    @classmethod
    def from_keyring(cls, entries: tuple[str, ...] | list[str]) -> SecretBox:
        """Build from REGISTRY_MASTER_KEYS ("kid:base64", ...): the first seals, all open."""
        keys: dict[str, bytes] = {}
        for entry in entries:
            kid, sep, key_b64 = entry.strip().partition(":")
            if not sep or not kid or kid in keys:
                raise MasterKeyError(
                    "REGISTRY_MASTER_KEYS must be a comma-separated list of distinct"
                    " 'key_id:base64' entries"
                )
            keys[kid] = cls.from_base64(key_b64, kid).keys[kid]
        if not keys:
            raise MasterKeyError("REGISTRY_MASTER_KEYS holds no key")
        return cls(key_id=next(iter(keys)), keys=keys)

    @classmethod
    def from_settings(cls, keyring: tuple[str, ...], key_b64: str | None, key_id: str) -> SecretBox:
        """REGISTRY_MASTER_KEYS when set, else REGISTRY_MASTER_KEY under REGISTRY_MASTER_KEY_ID."""
        if keyring:
            return cls.from_keyring(keyring)
        if not key_b64:
            raise MasterKeyError("set REGISTRY_MASTER_KEYS or REGISTRY_MASTER_KEY")
        return cls.from_base64(key_b64, key_id)

    def reseal(self, sealed: Sealed, aad: str) -> Sealed | None:
        """The value sealed under the current key, or None when it already is."""
        if sealed.key_id == self.key_id:
            return None
        return self.seal(self.open(sealed, aad), aad)

    def seal(self, plaintext: str, aad: str) -> Sealed:
        """Encrypt `plaintext`, bound to `aad` (the secret's identity) so rows cannot be swapped."""
        nonce = os.urandom(12)
        ct = AESGCM(self.keys[self.key_id]).encrypt(nonce, plaintext.encode(), aad.encode())
        return Sealed(nonce, ct, self.key_id)

    def open(self, sealed: Sealed, aad: str) -> str:
        """Decrypt a sealed value; SecretUnreadable when no configured key opens it."""
        key = self.keys.get(sealed.key_id)
        if key is None:
            raise SecretUnreadable(f"no master key with id {sealed.key_id!r} is configured")
        try:
            return AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, aad.encode()).decode()
        except InvalidTag:
            raise SecretUnreadable(
                f"the value does not open with master key {sealed.key_id!r}"
            ) from None
