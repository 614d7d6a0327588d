r"""Signed tokens: a JSON payload and its expiry, opaque, URL-safe and bound to one purpose.

A token is `<body>.<mac>`: `body` is the unpadded base64url of the JSON `{"x": expiry, "d":
payload}`, `mac` the unpadded base64url of HMAC-SHA256 over `body` under a key derived from the
secret *and the purpose* (`HMAC(secret, "switchboard signed token\0" + purpose)`), so a token
made for one purpose (a session id) never verifies for another (a parked call's state) even
under the same secret. The MAC is compared as text, in constant time: no second spelling of a
token verifies. Expiry is checked after the signature (nothing unsigned is trusted). Every way a
token can be wrong raises one of `TokenError`'s subclasses, never anything else, so callers map
it to what they answer. `tag` is the same keyed MAC detached from any payload, for ids that
carry their fields in clear (task ids).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import time
from typing import Any

import orjson

KEY_LABEL = b"switchboard signed token\0"
MAX_TOKEN_CHARS = 16_384  # longer input is refused before any decoding


class TokenError(ValueError):
    """A token that does not verify."""


class Malformed(TokenError):
    """Not a token at all: wrong type, shape or encoding."""


class BadSignature(TokenError):
    """A token not signed with this secret for this purpose (forged, edited, or another's)."""


class Expired(TokenError):
    """A genuine token past its expiry."""


def _b64(raw: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class Signer:
    """Signs and opens the tokens of one purpose under one secret."""

    __slots__ = ("_key", "purpose")

    def __init__(self, secret: bytes, purpose: str) -> None:
        if not purpose:
            raise ValueError("a signer needs a purpose")
        self.purpose = purpose
        self._key = hmac.new(secret, KEY_LABEL + purpose.encode(), hashlib.sha256).digest()

    def _mac(self, body: bytes) -> str:
        """The MAC of a token's body, as it is written in the token."""
        return _b64(hmac.new(self._key, body, hashlib.sha256).digest())

    def dumps(self, payload: Any, ttl_s: float, now: float | None = None) -> str:
        """A token carrying `payload` (JSON-able) that verifies for `ttl_s` seconds."""
        expiry = round((time.time() if now is None else now) + ttl_s, 3)
        body = _b64(orjson.dumps({"x": expiry, "d": payload}))
        return f"{body}.{self._mac(body.encode())}"

    def loads(self, token: Any, now: float | None = None) -> Any:
        """The payload of a genuine, live token; else Malformed, BadSignature or Expired."""
        return self.loads_until(token, now)[0]

    def loads_until(self, token: Any, now: float | None = None) -> tuple[Any, float]:
        """The payload of a genuine, live token and its expiry (epoch seconds); errors as loads."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise Malformed("a token is a short ASCII string")
        body, dot, mac = token.partition(".")
        if not body or not dot or not mac:
            raise Malformed("a token is <body>.<signature>")
        if not hmac.compare_digest(mac.encode(), self._mac(body.encode()).encode()):
            raise BadSignature(f"the token is not a genuine {self.purpose} token")
        try:
            doc = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (binascii.Error, ValueError):
            raise Malformed("the token's body is not base64url JSON") from None
        if not isinstance(doc, dict) or "d" not in doc:
            raise Malformed("the token's body has no payload")
        expiry = doc.get("x")
        if not isinstance(expiry, int | float) or isinstance(expiry, bool) or math.isnan(expiry):
            raise Malformed("the token's body has no expiry")
        if (time.time() if now is None else now) > expiry:
            raise Expired(f"the {self.purpose} token has expired")
        return doc["d"], float(expiry)

    def tag(self, data: bytes, chars: int = 32) -> str:
        """A detached MAC of `data` (the first `chars` hex digits), for ids in clear."""
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()[:chars]

    def tag_matches(self, data: bytes, tag: Any, chars: int = 32) -> bool:
        """Whether `tag` is `data`'s tag (constant time; anything not a string is not)."""
        if not isinstance(tag, str) or not tag.isascii():
            return False
        return hmac.compare_digest(tag.encode(), self.tag(data, chars).encode())
