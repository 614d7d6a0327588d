"""New opaque credentials: random, prefixed by kind, stored only as a hash."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from libs.common.authn import hash_token

API_KEY = "sbk_"
SERVICE_TOKEN = "sbt_"
ADMIN_TOKEN = "sba_"
SESSION = "sbs_"
REFRESH = "sbr_"
INVITE = "sbi_"


@dataclass(frozen=True)
class NewCredential:
    """The secret (shown once), the prefix kept for display and the stored hash."""

    secret: str
    prefix: str
    hash: str


def new_credential(kind: str) -> NewCredential:
    """A 256-bit random credential of `kind` (one of the prefixes above)."""
    secret = kind + secrets.token_urlsafe(32)
    return NewCredential(secret, secret[: len(kind) + 6], hash_token(secret))
