"""A per-replica cache of verified credentials, so tools/call costs one dict lookup for auth.

The shared `Verifier` checks a JWT's Ed25519 signature on every request (its cache sits behind the
signature check) and hashes opaque keys before its lookup. On the gateway's hot path that is the
largest single cost, so the gateway remembers `credential → principal` until the earliest of the
JWT's `exp` and the verifier's TTL. It forgets everything on any `events.auth.>` event (except
logins) and when NATS reconnects — the same invalidation the verifier itself uses, so a revoked
key or changed grant takes effect as quickly as before. Cookie credentials are not cached (they
need the CSRF check on every state-changing request).
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import orjson
from starlette.requests import Request

from libs.common.authn import Principal, authenticate, credential_from
from libs.common.bus import Bus

MAX_ENTRIES = 50_000


class PrincipalCache:
    """`sha256(credential) → (deadline, principal)`, cleared by auth events."""

    def __init__(self, ttl_s: float = 30.0) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[bytes, tuple[float, Principal]] = {}

    async def start(self, bus: Bus) -> None:
        """Follow auth events and reconnects, like the Verifier."""
        await bus.follow("events.auth.>", self._on_auth_event)
        on_reconnect = getattr(bus, "on_reconnect", None)
        if on_reconnect is not None:
            on_reconnect(self._on_reconnect)

    async def _on_auth_event(self, event: Any) -> None:
        """Any auth change may change a principal."""
        if not event.type.startswith("auth.login."):
            self._entries.clear()

    async def _on_reconnect(self) -> None:
        """Events sent while NATS was away are lost: forget everything."""
        self._entries.clear()

    def clear(self) -> None:
        """Forget every cached principal."""
        self._entries.clear()

    async def principal(self, request: Request) -> Principal:
        """The request's principal: a dict lookup when this credential was verified recently."""
        token, from_cookie = credential_from(request)
        if token is None or from_cookie:
            return await authenticate(request)
        now = time.monotonic()
        key = hashlib.sha256(token.encode()).digest()  # no raw credential kept in memory
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            request.state.principal = hit[1]
            return hit[1]
        principal = await authenticate(request)
        deadline = now + self.ttl_s
        exp = _jwt_exp(token)
        if exp is not None:
            deadline = min(deadline, now + (exp - time.time()))
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (deadline, principal)
        return principal


def _jwt_exp(token: str) -> float | None:
    """The `exp` claim of an (already verified) JWT, None for opaque credentials."""
    if token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) else None
