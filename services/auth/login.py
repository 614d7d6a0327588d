"""Password sign-in with throttling that tells nothing about which names exist.

The source address (nginx's X-Real-IP) is slowed with every failure and locked after too many;
a sign-in name — any name, a user's or not — with too many failures in a row is paced (one
attempt at a time, each answered after a delay), never locked, so strangers cannot lock a user
out. Unknown names, wrong passwords and suspended users get the same 401 in the same time.
"""

from __future__ import annotations

import asyncio
import hashlib
import math

import asyncpg
import pyotp
import structlog

from libs.common import outbox
from libs.common.errors import RateLimited, Unauthenticated
from libs.common.events import LOGIN_FAILED, LOGIN_LOCKED, LOGIN_SUCCEEDED, LoginAttempted
from services.auth import metrics
from services.auth.passwords import Passwords
from services.auth.settings import AuthSettings
from services.auth.store import users

log = structlog.get_logger()
MAX_DELAY_S = 2.0


def name_key(login: str) -> str:
    """How a sign-in name is counted: SHA-256 of it, trimmed and lower-cased."""
    return hashlib.sha256(login.strip().lower().encode()).hexdigest()


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
    name = name_key(login)
    async with pool.acquire() as conn:
        if await users.source_locked(conn, source):
            await _say(conn, LOGIN_LOCKED, login, source, None, "source_locked")
            metrics.login("locked")
            raise _slow_down(settings.lockout_s)
        paced = await users.name_failures(conn, name, settings.failure_window_s)
        if paced >= settings.max_user_failures:
            busy = await users.take_name_slot(conn, name, settings.account_delay_s)
            if busy:
                await _say(conn, LOGIN_LOCKED, login, source, None, "name_paced")
                metrics.login("paced")
                raise _slow_down(busy)
        user = await users.get_for_login(conn, login)
    if paced >= settings.max_user_failures:
        await asyncio.sleep(settings.account_delay_s)
    ok = await passwords.verify(user["password_hash"] if user else None, password)
    reason = None if ok else ("bad_password" if user else "unknown_user")
    if ok and user["status"] != "active":
        reason = "not_active"
    if reason is None and user["mfa_enabled"]:
        if not mfa_code:
            metrics.login("mfa_required")
            raise Unauthenticated("A one-time code is required.", details={"mfa_required": True})
        if not pyotp.TOTP(user["mfa_secret"]).verify(mfa_code, valid_window=1):
            reason = "bad_mfa_code"
    if reason is not None:
        await _fail(pool, settings, login, source, user, reason)
    async with pool.acquire() as conn, conn.transaction():
        await users.record_success(conn, user["id"])
        await users.clear_name(conn, name)
        await _say(conn, LOGIN_SUCCEEDED, login, source, user, None)
    metrics.login("succeeded")
    return user


async def _fail(
    pool: asyncpg.Pool,
    settings: AuthSettings,
    login: str,
    source: str,
    user: asyncpg.Record | None,
    reason: str,
) -> None:
    """Record the failure for the name and the source, slow the answer down, answer 401."""
    async with pool.acquire() as conn, conn.transaction():
        await users.record_name_failure(conn, name_key(login), settings.failure_window_s)
        source_failures = await users.record_source_failure(
            conn,
            source,
            settings.max_source_failures,
            settings.failure_window_s,
            settings.lockout_s,
        )
        await _say(conn, LOGIN_FAILED, login, source, user, reason)
    log.info("login_failed", reason=reason, source=source)
    metrics.login("failed")
    if source_failures == settings.max_source_failures:  # this failure locked the source
        metrics.LOCKOUTS.inc()
    # the delay grows with the source's failures, the same whichever name was tried
    await asyncio.sleep(min(MAX_DELAY_S, settings.failure_delay_s * source_failures))
    raise Unauthenticated("The username or password is wrong.")


def _slow_down(retry_after_s: float) -> RateLimited:
    """429 for a locked source or a paced name: the same answer whatever the name."""
    seconds = max(1, math.ceil(retry_after_s))
    return RateLimited(
        "Too many failed sign-ins; try again later.",
        details={"retry_after_s": seconds},
        headers={"Retry-After": str(seconds)},
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
