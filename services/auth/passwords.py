"""Password hashing (argon2id, off the event loop) and the password policy."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.auth.settings import AuthSettings

MAX_LENGTH = 256
COMMON = {
    "password",
    "password1",
    "password123",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyuiop",
    "letmein123",
    "switchboard",
    "administrator",
    "changeme123",
}


class Passwords:
    """Hashes and checks passwords with argon2id."""

    def __init__(self, settings: AuthSettings) -> None:
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self.min_length = settings.password_min_length
        # verifying against this keeps unknown users as slow as known ones
        self._dummy = self.hasher.hash("not-a-real-password-for-timing")

    async def hash(self, password: str) -> str:
        """The argon2id hash of `password`."""
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when `password` matches `stored` (None checks a dummy, and fails)."""
        return await asyncio.to_thread(self._verify, stored, password)

    def _verify(self, stored: str | None, password: str) -> bool:
        """Blocking verification."""
        try:
            ok = self.hasher.verify(stored or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and stored is not None

    def problems(self, password: str, username: str = "") -> list[str]:
        """What is wrong with `password` under the policy (empty when it is acceptable)."""
        out = []
        if len(password) < self.min_length:
            out.append(f"must be at least {self.min_length} characters")
        if len(password) > MAX_LENGTH:
            out.append(f"must be at most {MAX_LENGTH} characters")
        classes = sum(
            [
                any(c.islower() for c in password),
                any(c.isupper() for c in password),
                any(c.isdigit() for c in password),
                any(not c.isalnum() for c in password),
            ]
        )
        if classes < 3:
            out.append("must mix at least three of: lower case, upper case, digits, symbols")
        if password.lower() in COMMON or (username and username.lower() in password.lower()):
            out.append("must not be a common password or contain the username")
        return out
