"""First start: create the platform admin so `make run` needs no manual setup step."""

from __future__ import annotations

import secrets
import sys

import asyncpg
import structlog

from libs.common.events import USER_CREATED
from services.auth.events_out import emit, user_payload
from services.auth.passwords import Passwords
from services.auth.settings import AuthSettings
from services.auth.store import users

log = structlog.get_logger()


async def first_admin(pool: asyncpg.Pool, passwords: Passwords, settings: AuthSettings) -> bool:
    """Create SWITCHBOARD_ADMIN_USER unless a platform admin exists; True when created."""
    password = settings.admin_password
    generated = not password
    if generated:
        password = f"Sb-{secrets.token_urlsafe(18)}-1a"
    elif passwords.problems(password, settings.admin_user):
        log.warning("admin_password_breaks_policy", user=settings.admin_user)
    hashed = await passwords.hash(password)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("LOCK TABLE auth.users IN SHARE ROW EXCLUSIVE MODE")
        if await users.count_admins(conn):
            return False
        row = await users.insert(
            conn,
            username=settings.admin_user,
            email=None,
            display_name="Platform admin",
            password_hash=hashed,
            platform_role="platform_admin",
        )
        await emit(conn, USER_CREATED, user_payload(row), None)
    log.info("platform_admin_created", user=settings.admin_user, generated=generated)
    if generated:
        # printed once, outside the structured logs, so the operator can sign in
        print(
            f"switchboard: platform admin {settings.admin_user!r} created with password "
            f"{password} — change it after signing in.",
            file=sys.stderr,
        )
    return True
