"""Redaction of tool-call arguments."""

from libs.common.redaction import MASK, mask_string, redact


def test_the_none_policy_keeps_nothing() -> None:
    assert redact({"a": 1}, "none") is None


def test_the_keys_policy_keeps_only_the_names() -> None:
    assert redact({"query": "x", "n": 3}, "keys") == {"query": MASK, "n": MASK}


def test_the_full_policy_masks_secret_keys_and_secret_looking_values_only() -> None:
    args = {
        "query": "weather in Paris",
        "api_key": "abc",
        "headers": {"Authorization": "Bearer abcdefghijklmnop"},
        "items": ["plain", "sk-abcdefghijklmnopqrstuv", 3],
        "url": "https://bob:hunter2@example.com/x",
        "count": 7,
    }
    assert redact(args, "full") == {
        "query": "weather in Paris",
        "api_key": MASK,
        "headers": {"Authorization": MASK},
        "items": ["plain", MASK, 3],
        "url": f"https://bob:{MASK}@example.com/x",
        "count": 7,
    }


def test_tokens_of_known_shapes_are_masked_wherever_they_appear() -> None:
    for secret in (
        "sbk_0123456789abcdef",
        "ghp_abcdefghijklmnop1234",
        "AKIAABCDEFGHIJKLMNOP",
        "eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl",
        "0123456789abcdef0123456789abcdef01234567",
    ):
        assert mask_string(secret) == MASK
    assert mask_string("hello world") == "hello world"
