"""Password sign-in with throttling: per-user lockout, per-source lockout, growing delay."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pyotp
import structlog

from libs.common import outbox
from libs.common.errors import RateLimited, Unauthenticated
from libs.common.events import LOGIN_FAILED, LOGIN_LOCKED, LOGIN_SUCCEEDED, LoginAttempted
from services.auth.passwords import Passwords
from services.auth.settings import AuthSettings
from services.auth.store import users

log = structlog.get_logger()
MAX_DELAY_S = 2.0


async def sign_in(
    pool: asyncpg.Pool,
    passwords: Passwords,
    settings: AuthSettings,
    login: str,
    password: str,
    mfa_code: str | None,
    source: str,
) -> asyncpg.Record:
    """The user whose credentials these are, or 401/429 (failures are recorded first)."""
    async with pool.acquire() as conn:
        if await users.source_locked(conn, source):
            await _say(conn, LOGIN_LOCKED, login, source, None, "source_locked")
            raise _locked(settings)
        user = await users.get_for_login(conn, login)
    if user is not None and user["locked_until"] and user["locked_until"] > datetime.now(UTC):
        async with pool.acquire() as conn:
            await _say(conn, LOGIN_LOCKED, login, source, user, "account_locked")
        raise _locked(settings)
    ok = await passwords.verify(user["password_hash"] if user else None, password)
    reason = None if ok else ("bad_password" if user else "unknown_user")
    if ok and user["status"] != "active":
        reason = "not_active"
    if reason is None and user["mfa_enabled"]:
        if not mfa_code:
            raise Unauthenticated("A one-time code is required.", details={"mfa_required": True})
        if not pyotp.TOTP(user["mfa_secret"]).verify(mfa_code, valid_window=1):
            reason = "bad_mfa_code"
    if reason is not None:
        await _fail(pool, settings, login, source, user, reason)
    async with pool.acquire() as conn, conn.transaction():
        await users.record_success(conn, user["id"])
        await _say(conn, LOGIN_SUCCEEDED, login, source, user, None)
    return user


async def _fail(
    pool: asyncpg.Pool,
    settings: AuthSettings,
    login: str,
    source: str,
    user: asyncpg.Record | None,
    reason: str,
) -> None:
    """Record a failure, slow the answer down, and answer 401."""
    failures = 1
    async with pool.acquire() as conn, conn.transaction():
        if user is not None:
            row = await users.record_failure(
                conn, user["id"], settings.max_user_failures, settings.lockout_s
            )
            failures = row["failed_logins"]
        source_failures = await users.record_source_failure(
            conn,
            source,
            settings.max_source_failures,
            settings.failure_window_s,
            settings.lockout_s,
        )
        failures = max(failures, source_failures)
        await _say(conn, LOGIN_FAILED, login, source, user, reason)
    log.info("login_failed", reason=reason, source=source)
    await asyncio.sleep(min(MAX_DELAY_S, settings.failure_delay_s * failures))
    raise Unauthenticated("The username or password is wrong.")


def _locked(settings: AuthSettings) -> RateLimited:
    """429 while locked."""
    return RateLimited(
        "Too many failed sign-ins; try again later.",
        details={"retry_after_s": settings.lockout_s},
        headers={"Retry-After": str(settings.lockout_s)},
    )


async def _say(
    conn: asyncpg.Connection,
    kind: object,
    login: str,
    source: str,
    user: asyncpg.Record | None,
    reason: str | None,
) -> None:
    """Enqueue a login event (for audit)."""
    uid = str(user["id"]) if user is not None else None
    payload = LoginAttempted(username=login[:320], source=source, user=uid, reason=reason)
    await outbox.enqueue(conn, "auth", kind.event(payload, source="auth", actor=uid))  # type: ignore[attr-defined]
