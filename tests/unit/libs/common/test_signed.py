"""The signed-token codec: round trip, purpose, tampering, expiry, garbage."""

from __future__ import annotations

import base64
import random

import orjson
import pytest

from libs.common.signed import BadSignature, Expired, Malformed, Signer, TokenError

PAYLOAD = {"i": "replica-1", "c": "call-7", "p": "user:u1", "n": [1, 2.5, None, "é"]}


def test_a_token_round_trips_its_payload() -> None:
    signer = Signer(b"secret", "parked call")
    token = signer.dumps(PAYLOAD, 30)
    assert signer.loads(token) == PAYLOAD
    assert Signer(b"secret", "parked call").loads(token) == PAYLOAD  # any replica
    assert all(c.isalnum() or c in "-_." for c in token)  # URL-safe, opaque


def test_a_token_never_verifies_for_another_purpose_or_secret() -> None:
    token = Signer(b"secret", "session id").dumps(PAYLOAD, 30)
    with pytest.raises(BadSignature):
        Signer(b"secret", "parked call").loads(token)
    with pytest.raises(BadSignature):
        Signer(b"other", "session id").loads(token)


def test_any_edited_character_breaks_the_signature() -> None:
    signer = Signer(b"secret", "session id")
    token = signer.dumps(PAYLOAD, 30)
    for i, char in enumerate(token):
        if char == ".":
            continue
        for other in {"A", "B", "0", "_"} - {char}:
            with pytest.raises(TokenError):
                signer.loads(token[:i] + other + token[i + 1 :])


def test_a_forged_body_with_a_copied_signature_is_refused() -> None:
    signer = Signer(b"secret", "session id")
    token = signer.dumps({"p": "alice"}, 30)
    forged = base64.urlsafe_b64encode(orjson.dumps({"x": 9e9, "d": {"p": "bob"}}))
    with pytest.raises(BadSignature):
        signer.loads(forged.decode().rstrip("=") + "." + token.split(".")[1])


def test_a_token_expires_after_its_ttl() -> None:
    signer = Signer(b"secret", "session id")
    token = signer.dumps(PAYLOAD, 10, now=1000.0)
    assert signer.loads(token, now=1009.9) == PAYLOAD
    with pytest.raises(Expired):
        signer.loads(token, now=1010.1)
    with pytest.raises(Expired):
        signer.loads(signer.dumps(PAYLOAD, -1))


def test_a_token_tells_its_expiry_to_who_asks() -> None:
    signer = Signer(b"secret", "session id")
    token = signer.dumps(PAYLOAD, 10, now=1000.0)
    assert signer.loads_until(token, now=1005.0) == (PAYLOAD, 1010.0)
    with pytest.raises(Expired):
        signer.loads_until(token, now=1010.1)


def test_an_expired_token_of_another_purpose_is_a_bad_signature_not_expired() -> None:
    token = Signer(b"secret", "a").dumps(PAYLOAD, -1)
    with pytest.raises(BadSignature):
        Signer(b"secret", "b").loads(token)


@pytest.mark.parametrize(
    "garbage",
    [None, 7, b"a.b", [], "", ".", "a.", ".b", "a.b.c", "é.x", "x" * 20_000, "\0.\0", "==.=="],
)
def test_garbage_raises_only_the_codecs_error(garbage: object) -> None:
    with pytest.raises(TokenError):
        Signer(b"secret", "session id").loads(garbage)


def test_random_input_raises_only_the_codecs_error() -> None:
    signer = Signer(b"secret", "session id")
    token = signer.dumps(PAYLOAD, 30)
    rng = random.Random(14)
    alphabet = token + "=+/.\x00\xff é"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 80)))
        with pytest.raises(TokenError):
            signer.loads(text)


def test_a_genuinely_signed_body_that_is_not_a_token_is_malformed() -> None:
    signer = Signer(b"secret", "session id")
    for body in (b"not json", orjson.dumps([1, 2]), orjson.dumps({"x": 9e9}), b'{"d":1}'):
        text = base64.urlsafe_b64encode(body).decode().rstrip("=")
        with pytest.raises(Malformed):
            signer.loads(f"{text}.{signer._mac(text.encode())}")
    text = base64.urlsafe_b64encode(b'{"x":"soon","d":1}').decode().rstrip("=")
    with pytest.raises(Malformed):
        signer.loads(f"{text}.{signer._mac(text.encode())}")


def test_a_detached_tag_matches_only_its_data_and_purpose() -> None:
    signer = Signer(b"secret", "task id")
    tag = signer.tag(b"jobs\0t1", 24)
    assert len(tag) == 24
    assert signer.tag_matches(b"jobs\0t1", tag, 24)
    assert not signer.tag_matches(b"jobs\0t2", tag, 24)
    assert not Signer(b"secret", "session id").tag_matches(b"jobs\0t1", tag, 24)
    assert not signer.tag_matches(b"jobs\0t1", None, 24)
    assert not signer.tag_matches(b"jobs\0t1", "é" * 24, 24)


def test_a_signer_needs_a_purpose() -> None:
    with pytest.raises(ValueError):
        Signer(b"secret", "")
