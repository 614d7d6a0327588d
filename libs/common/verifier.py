"""Verification of every credential kind: JWTs against cached JWKS, opaque ones over RPC."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from typing import Any

import jwt
import structlog

from libs.common import rpc_types, subjects
from libs.common.bus import Bus, RpcError
from libs.common.cookies import cookie_names
from libs.common.errors import ApiError, Unauthenticated, Unavailable
from libs.common.events import Event
from libs.common.principal import Principal
from libs.common.rpc_types import IntrospectRequest, JwksRequest

log = structlog.get_logger()

JWT_ALGORITHMS = ["EdDSA", "RS256"]
JWT_AUDIENCE = "switchboard"
JWT_ISSUER = "switchboard-auth"  # the issuer of tokens for JWT_AUDIENCE
DEFAULT_PORTS = {"http": "80", "https": "443"}
OPAQUE_PREFIXES = {
    "sbk_": "api_key",
    "sbt_": "service_token",
    "sba_": "admin_token",
    "sbs_": "session",
}


def hash_token(token: str) -> str:
    """The stored form of an opaque credential: hex SHA-256 (the tokens are high-entropy)."""
    return hashlib.sha256(token.encode()).hexdigest()


class Verifier:
    """Verifies credentials: JWTs locally against cached JWKS, opaque ones via rpc.auth.introspect.

    Principals are cached for `ttl` seconds; any `events.auth.>` event clears the cache, so a
    revoked key, a suspended user or a changed grant takes effect within the event's delivery.
    The cache is also cleared whenever the NATS connection comes back, since events published
    while it was away are not replayed. JWTs must have `aud="switchboard"` and
    `iss="switchboard-auth"`, or an audience a resource server added with the issuer it trusts
    for it (the gateway: its `/mcp` URL, issued by the public URL), matched exactly in RFC 8707
    canonical form: no path under it, no prefix.
    """

    def __init__(
        self,
        bus: Bus,
        ttl: float = 30.0,
        rpc_timeout: float = 3.0,
        audiences: Mapping[str, str] | None = None,
        cookie_secure: bool = True,
    ) -> None:
        self.bus = bus
        self.ttl = ttl
        self.rpc_timeout = rpc_timeout
        self.cookies = cookie_names(cookie_secure)
        self.audiences: dict[str, str] = {}  # canonical audience → the issuer trusted for it
        for audience, issuer in (audiences or {}).items():
            self.accept_audience(audience, issuer)
        self._cache: dict[tuple[str, ...], tuple[float, Principal]] = {}
        self._keys: dict[str, jwt.PyJWK] = {}  # by kid; each knows its one algorithm
        self._keys_fetched = 0.0
        self._keys_lock = asyncio.Lock()

    def accept_audience(self, audience: str, issuer: str) -> None:
        """Also accept JWTs whose `aud` is exactly `audience` and whose `iss` is `issuer`.

        The audience is e.g. the gateway's public `/mcp` URL."""
        audience = canonical_resource(audience)
        if audience:
            self.audiences[audience] = issuer

    def issuer_for(self, aud: object) -> str | None:
        """The issuer trusted for a token's `aud` claim (a string or a list).

        None when it names no accepted audience."""
        values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        for value in values:
            if not isinstance(value, str):
                continue
            if value == JWT_AUDIENCE:
                return JWT_ISSUER
            issuer = self.audiences.get(canonical_resource(value))
            if issuer is not None:
                return issuer
        return None

    def audience_ok(self, aud: object) -> bool:
        """True when a token's `aud` claim names an accepted audience."""
        return self.issuer_for(aud) is not None

    async def start(self) -> None:
        """Follow auth events to drop cached principals and keys; forget them on reconnect."""
        await self.bus.follow(subjects.AUTH_EVENTS, self._on_auth_event)
        on_reconnect = getattr(self.bus, "on_reconnect", None)
        if on_reconnect is not None:
            on_reconnect(self._on_reconnect)

    async def _on_reconnect(self) -> None:
        """Events sent while NATS was away are lost to us: drop what they might have changed."""
        self._cache.clear()
        self._keys_fetched = 0.0
        log.info("verifier_cache_cleared", reason="nats_reconnected")

    async def _on_auth_event(self, event: Event) -> None:
        """Any change in auth may change a principal: forget them all."""
        if event.type.startswith("auth.login."):
            return
        self._cache.clear()
        if event.type.startswith("auth.signing_key."):
            self._keys_fetched = 0.0

    def clear(self) -> None:
        """Forget every cached principal."""
        self._cache.clear()

    async def verify(self, token: str) -> Principal:
        """The principal for a bearer credential, or Unauthenticated.

        A credential verified recently costs one dict lookup (keyed by its SHA-256, so no raw
        credential is held): the hot path of every service, the gateway's above all. The entry
        lives until the verifier's TTL or the JWT's expiry, whichever comes first, and goes with
        the rest of the cache on any auth event.
        """
        token = token.strip()
        if not token:
            raise Unauthenticated("An empty credential was given.")
        now = time.monotonic()
        seen = ("credential", hash_token(token))
        hit = self._cache.get(seen)
        if hit is not None and hit[0] > now:
            return hit[1]
        deadline = now + self.ttl
        if any(token.startswith(prefix) for prefix in OPAQUE_PREFIXES):
            principal = await self._introspect(
                ("token", seen[1]), IntrospectRequest(token_hash=seen[1])
            )
        elif token.count(".") == 2:
            claims = await self._verify_jwt(token)
            key = ("user", claims["sub"], claims.get("sid") or "")
            principal = await self._introspect(
                key, IntrospectRequest(user_id=claims["sub"], session_id=claims.get("sid"))
            )
            deadline = min(deadline, now + float(claims["exp"]) - time.time())
        else:
            raise Unauthenticated("The credential is not of a known kind.")
        self._cache[seen] = (deadline, principal)
        return principal

    async def _introspect(self, key: tuple[str, ...], request: IntrospectRequest) -> Principal:
        """Cached principal lookup through rpc.auth.introspect."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            principal = await self.bus.call(
                rpc_types.AUTH_INTROSPECT, request, timeout=self.rpc_timeout
            )
        except RpcError as exc:
            if exc.status in (401, 403, 404):
                raise Unauthenticated("The credential is not valid.") from None
            raise Unavailable("The auth service could not check the credential.") from None
        except ApiError:
            raise Unavailable("The auth service is not reachable.") from None
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, principal)
        return principal

    async def _verify_jwt(self, token: str) -> dict[str, Any]:
        """Check the signature against the JWKS (refetched once for an unknown kid) and claims."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("The token is malformed.") from None
        kid = header.get("kid")
        if header.get("alg") not in JWT_ALGORITHMS or not isinstance(kid, str):
            raise Unauthenticated("The token's algorithm or key id is not accepted.")
        key = self._keys.get(kid) or await self._refresh_keys(kid)
        if key is None:
            raise Unauthenticated("The token was signed with an unknown key.")
        # a key verifies with its own algorithm only: `alg: RS256` naming an Ed25519 key is a
        # forgery, not a reason to try RSA with a key of another type
        if header["alg"] != key.algorithm_name:
            raise Unauthenticated("The token's algorithm is not its key's.")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[key.algorithm_name],
                options={"require": ["exp", "iat", "sub", "aud"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The token has expired.") from None
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthenticated("The token does not verify.") from None
        issuer = self.issuer_for(claims.get("aud"))
        if issuer is None:
            raise Unauthenticated("The token is not meant for this service.")
        if claims.get("iss") != issuer:
            raise Unauthenticated("The token was not issued by the issuer of its audience.")
        if claims.get("typ") != "access":
            raise Unauthenticated("The token is not an access token.")
        return claims

    async def _refresh_keys(self, kid: str) -> jwt.PyJWK | None:
        """Fetch the JWKS from auth, at most once a second."""
        async with self._keys_lock:
            if kid in self._keys:
                return self._keys[kid]
            if time.monotonic() - self._keys_fetched < 1.0:
                return None
            self._keys_fetched = time.monotonic()
            try:
                jwks = await self.bus.call(
                    rpc_types.AUTH_JWKS, JwksRequest(), timeout=self.rpc_timeout
                )
            except ApiError:
                raise Unavailable("The auth service's keys could not be fetched.") from None
            keys = {}
            for jwk in jwks.keys:
                try:
                    keys[jwk["kid"]] = jwt.PyJWK(jwk)
                except (jwt.PyJWTError, KeyError):
                    log.warning("jwks_key_skipped", kid=jwk.get("kid"))
            self._keys = keys
            return keys.get(kid)


def canonical_resource(url: str) -> str:
    """A resource URL in the canonical form RFC 8707 and the MCP spec compare.

    Lower-case scheme and host, no default port, no fragment, no trailing slash; the path is
    kept as it is (no dot-segment or case folding), so only an exact match is the same
    resource."""
    url = url.strip().split("#", 1)[0]
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.rstrip("/")
    scheme = scheme.lower()
    host, slash, path = rest.partition("/")
    host = host.lower()
    name, colon, port = host.rpartition(":")
    if colon and "]" not in port and DEFAULT_PORTS.get(scheme) == port:
        host = name
    return f"{scheme}://{host}{slash}{path}".rstrip("/")
