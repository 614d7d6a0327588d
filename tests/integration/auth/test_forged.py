"""Forged, expired, tampered and replayed credentials are refused, by auth and elsewhere."""

import base64
import hashlib
import hmac
import time

import asyncpg
import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from libs.common.errors import Unavailable
from services.auth.signing import KeyStore
from tests.support.auth import TEST_ENV, AuthClient

WHOAMI = "/api/v1/probe/whoami"


def b64(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    """The unverified claims of a JWT."""
    return jwt.decode(token, options={"verify_signature": False})


async def assert_refused(auth: AuthClient, probe: httpx.AsyncClient, token: str) -> None:
    """Both auth itself and another service answer 401."""
    for client, path in [(auth.http, "/api/v1/auth/me"), (probe, WHOAMI)]:
        resp = await client.get(path, headers=auth.bearer(token))
        assert resp.status_code == 401, (path, resp.text)
        assert resp.json()["error"]["code"] == "UNAUTHENTICATED"


@pytest.fixture
async def real(auth: AuthClient) -> tuple[str, dict, dict]:
    """A valid token of a fresh user, its header and claims."""
    user = await auth.create_user()
    return user.token, jwt.get_unverified_header(user.token), claims_of(user.token)


async def test_alg_none_is_refused(auth: AuthClient, probe: httpx.AsyncClient, real) -> None:
    _, header, claims = real
    forged = f"{b64(orjson.dumps({**header, 'alg': 'none'}))}.{b64(orjson.dumps(claims))}."
    await assert_refused(auth, probe, forged)


async def test_hs256_signed_with_the_public_key_is_refused(
    auth: AuthClient, probe: httpx.AsyncClient, real
) -> None:
    _, header, claims = real
    jwks = (await auth.http.get("/api/v1/auth/jwks.json")).json()
    public = next(k for k in jwks["keys"] if k["kid"] == header["kid"])["x"].encode()
    signing_input = f"{b64(orjson.dumps({**header, 'alg': 'HS256'}))}.{b64(orjson.dumps(claims))}"
    sig = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    await assert_refused(auth, probe, f"{signing_input}.{b64(sig)}")


async def test_an_expired_token_signed_with_the_real_key_is_refused(
    auth: AuthClient, probe: httpx.AsyncClient, real, pg_url: str
) -> None:
    _, _, claims = real
    expired = {**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}
    keystore = KeyStore(TEST_ENV["AUTH_KEY_ENCRYPTION_SECRET"], 900)
    conn = await asyncpg.connect(pg_url)
    try:
        token = await keystore.sign(conn, expired)
    finally:
        await conn.close()
    await assert_refused(auth, probe, token)


async def test_a_refresh_token_is_not_an_access_token(
    auth: AuthClient, probe: httpx.AsyncClient, real, pg_url: str
) -> None:
    _, _, claims = real
    keystore = KeyStore(TEST_ENV["AUTH_KEY_ENCRYPTION_SECRET"], 900)
    conn = await asyncpg.connect(pg_url)
    try:
        token = await keystore.sign(conn, {**claims, "typ": "refresh"})
        wrong_audience = await keystore.sign(conn, {**claims, "aud": "elsewhere"})
    finally:
        await conn.close()
    await assert_refused(auth, probe, token)
    await assert_refused(auth, probe, wrong_audience)


async def test_a_token_with_an_unknown_kid_is_refused(
    auth: AuthClient, probe: httpx.AsyncClient, real
) -> None:
    _, _, claims = real
    other = Ed25519PrivateKey.generate()
    forged = jwt.encode(claims, other, algorithm="EdDSA", headers={"kid": "k0-notakey"})
    await assert_refused(auth, probe, forged)


async def test_a_tampered_payload_is_refused(
    auth: AuthClient, probe: httpx.AsyncClient, real
) -> None:
    token, _, claims = real
    head, _, sig = token.split(".")
    admin = await auth.call("GET", "/api/v1/auth/me")
    tampered = {**claims, "sub": admin["user"]["id"]}
    await assert_refused(auth, probe, f"{head}.{b64(orjson.dumps(tampered))}.{sig}")


async def test_a_suspended_users_token_is_refused(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    user = await auth.create_user()
    await auth.call("POST", f"/api/v1/users/{user.id}/suspend")
    await assert_refused(auth, probe, user.token)
    resp = await auth.http.post(
        "/api/v1/auth/login", json={"username": user.username, "password": user.password}
    )
    assert resp.status_code == 401


async def test_a_reused_refresh_token_revokes_the_whole_family(
    auth: AuthClient, probe: httpx.AsyncClient
) -> None:
    user = await auth.create_user()
    first = await auth.login(user.username, user.password)
    resp = await auth.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert resp.status_code == 200
    second = resp.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await probe.get(WHOAMI, headers=auth.bearer(second["access_token"]))).status_code == 200
    reuse = await auth.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "UNAUTHENTICATED"
    again = await auth.http.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert again.status_code == 401
    await assert_refused(auth, probe, second["access_token"])


async def test_garbage_credentials_are_refused(auth: AuthClient, probe: httpx.AsyncClient) -> None:
    for token in ["sbk_nope", "sbt_" + "A" * 43, "sba_" + "B" * 43, "sbs_x", "a.b.c", "random"]:
        await assert_refused(auth, probe, token)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "HS512"])
async def test_an_algorithm_other_than_the_keys_own_is_refused_not_crashed(
    auth: AuthClient, probe: httpx.AsyncClient, real, alg: str
) -> None:
    _, header, claims = real  # the platform's real kid: an Ed25519 key
    signing_input = f"{b64(orjson.dumps({**header, 'alg': alg}))}.{b64(orjson.dumps(claims))}"
    await assert_refused(auth, probe, f"{signing_input}.{b64(b'x' * 256)}")


async def test_a_stored_key_the_configured_secret_cannot_open_is_a_clear_503(
    auth: AuthClient, real, pg_url: str
) -> None:
    # another AUTH_KEY_ENCRYPTION_SECRET than the one that sealed the stored key (a second
    # checkout's dev secrets on a shared database): no 500, and nothing is signed
    _, _, claims = real
    keystore = KeyStore("another-secret-than-the-one-that-sealed-it", 900)
    conn = await asyncpg.connect(pg_url)
    try:
        with pytest.raises(Unavailable, match="does not open the stored signing key"):
            await keystore.sign(conn, claims)
    finally:
        await conn.close()
