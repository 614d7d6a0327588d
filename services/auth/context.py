"""What the auth service's handlers share: pool, bus, settings, signing keys, password hashing."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from starlette.requests import HTTPConnection

from libs.common.bus import Bus
from libs.common.verifier import Verifier
from services.auth.passwords import Passwords
from services.auth.settings import AuthSettings
from services.auth.signing import KeyStore


@dataclass(frozen=True)
class AuthContext:
    """The auth service's shared parts, built once in the lifespan."""

    pool: asyncpg.Pool
    bus: Bus
    settings: AuthSettings
    keystore: KeyStore
    passwords: Passwords
    verifier: Verifier


def context_of(conn: HTTPConnection) -> AuthContext:
    """Return the auth service's shared parts for a request or WebSocket."""
    return conn.state.auth
