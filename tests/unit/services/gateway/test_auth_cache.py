"""The JWT expiry the principal cache honours."""

import base64

import orjson

from services.gateway.auth_cache import _jwt_exp


def _jwt(claims: dict) -> str:
    """An (unsigned) JWT with these claims; the cache only reads `exp` after verification."""
    payload = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    return f"eyJhbGciOiJFZERTQSJ9.{payload}.sig"


def test_the_exp_of_a_jwt_bounds_its_cache_entry() -> None:
    assert _jwt_exp(_jwt({"sub": "u", "exp": 1_900_000_000})) == 1_900_000_000.0


def test_opaque_keys_and_jwts_without_exp_have_none() -> None:
    assert _jwt_exp("sbk_abcdef") is None
    assert _jwt_exp(_jwt({"sub": "u"})) is None
    assert _jwt_exp("a.!!!.c") is None
