"""The password policy and argon2id hashing."""

from services.auth.passwords import Passwords
from services.auth.settings import AuthSettings

SETTINGS = AuthSettings(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1)


def test_a_long_mixed_password_meets_the_policy() -> None:
    assert Passwords(SETTINGS).problems("Correct-Horse-9", "alice") == []


def test_short_single_class_common_or_username_passwords_break_the_policy() -> None:
    policy = Passwords(SETTINGS)
    assert policy.problems("Ab1!", "alice")
    assert policy.problems("abcdefghijklmnop", "alice")
    assert policy.problems("password123", "")
    assert policy.problems("xx-Alice-2024-xx", "alice")


async def test_a_hash_verifies_only_its_password() -> None:
    passwords = Passwords(SETTINGS)
    stored = await passwords.hash("Correct-Horse-9")
    assert stored.startswith("$argon2id$")
    assert await passwords.verify(stored, "Correct-Horse-9")
    assert not await passwords.verify(stored, "Correct-Horse-8")
    assert not await passwords.verify(None, "Correct-Horse-9")
    assert not await passwords.verify("not-a-hash", "x")
