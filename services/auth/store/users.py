"""SQL for auth.users and the failed-login bookkeeping."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from libs.common.pagination import ListQuery
from libs.common.sql import Where, assignments, fetch_page

COLUMNS = (
    "id, username, email, display_name, password_hash, platform_role, status, plan, mfa_secret,"
    " mfa_enabled, failed_logins, locked_until, last_login_at, password_changed_at, created_at,"
    " updated_at"
)
SORTS = ("created_at", "username", "email", "status", "last_login_at")
UPDATABLE = ("email", "display_name", "plan", "platform_role")


async def count_admins(conn: asyncpg.Connection) -> int:
    """Platform admins ever created (setup is allowed only when zero)."""
    return await conn.fetchval(
        "SELECT count(*) FROM auth.users WHERE platform_role = 'platform_admin'"
    )


async def insert(
    conn: asyncpg.Connection,
    *,
    username: str,
    email: str | None,
    display_name: str,
    password_hash: str | None,
    platform_role: str = "user",
) -> asyncpg.Record:
    """Create a user; raises UniqueViolationError on a taken username or email."""
    return await conn.fetchrow(
        "INSERT INTO auth.users (id, username, email, display_name, password_hash, platform_role,"
        " password_changed_at) VALUES ($1, $2, $3, $4, $5, $6, now())"
        f" RETURNING {COLUMNS}",
        uuid.uuid4(),
        username,
        email,
        display_name,
        password_hash,
        platform_role,
    )


async def get(conn: asyncpg.Connection, ref: str) -> asyncpg.Record | None:
    """A user (not deleted) by id or username."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM auth.users WHERE status <> 'deleted'"
        " AND (id::text = $1 OR username = $1)",
        ref,
    )


async def get_for_login(conn: asyncpg.Connection, login: str) -> asyncpg.Record | None:
    """A user by username or email, for sign-in."""
    return await conn.fetchrow(
        f"SELECT {COLUMNS} FROM auth.users WHERE status <> 'deleted'"
        " AND (username = $1 OR lower(email) = lower($1)) LIMIT 1",
        login,
    )


async def list_users(conn: asyncpg.Connection, query: ListQuery) -> tuple[list, int]:
    """A page of users with search (q) and filters (role, status, org)."""
    w = Where()
    if "status" in query.filters:
        w.add("u.status = {}", query.filters["status"])
    else:
        w.add("u.status <> 'deleted'")
    w.search(("u.username", "u.email", "u.display_name"), query.q)
    if "role" in query.filters:
        w.add("u.platform_role = {}", query.filters["role"])
    if "org" in query.filters:
        w.add(
            "EXISTS (SELECT 1 FROM auth.memberships m JOIN auth.orgs o ON o.id = m.org_id"
            " WHERE m.user_id = u.id AND (o.id::text = {0} OR o.slug = {0}))",
            query.filters["org"],
        )
    columns = ", ".join("u." + c.strip() for c in COLUMNS.split(","))
    order = f"u.{query.order_sql} NULLS LAST, u.id"
    return await fetch_page(conn, columns, "auth.users u", w, query, order)


async def update(
    conn: asyncpg.Connection, user_id: uuid.UUID, fields: dict[str, Any]
) -> asyncpg.Record:
    """Set the given updatable fields."""
    sets, values = assignments(fields, UPDATABLE)
    return await conn.fetchrow(
        f"UPDATE auth.users SET {sets} WHERE id = $1 RETURNING {COLUMNS}", user_id, *values
    )


async def set_status(
    conn: asyncpg.Connection, user_ids: Sequence[uuid.UUID], status: str
) -> list[asyncpg.Record]:
    """Set the status of the listed (not deleted) users; returns the changed ones."""
    return await conn.fetch(
        f"UPDATE auth.users SET status = $2, updated_at = now()"
        f" WHERE id = ANY($1) AND status <> 'deleted' AND status <> $2 RETURNING {COLUMNS}",
        list(user_ids),
        status,
    )


async def set_password(conn: asyncpg.Connection, user_id: uuid.UUID, password_hash: str) -> None:
    """Replace the password hash."""
    await conn.execute(
        "UPDATE auth.users SET password_hash = $2, password_changed_at = now(), updated_at = now()"
        " WHERE id = $1",
        user_id,
        password_hash,
    )


async def set_mfa(
    conn: asyncpg.Connection, user_id: uuid.UUID, secret: str | None, enabled: bool
) -> None:
    """Store the TOTP secret and whether MFA is required."""
    await conn.execute(
        "UPDATE auth.users SET mfa_secret = $2, mfa_enabled = $3, updated_at = now() WHERE id = $1",
        user_id,
        secret,
        enabled,
    )


async def name_failures(conn: asyncpg.Connection, name_hash: str, window_s: int) -> int:
    """Failures in a row of a sign-in name within the window (0 when none)."""
    return (
        await conn.fetchval(
            "SELECT failures FROM auth.sign_in_names WHERE name_hash = $1"
            " AND updated_at > now() - make_interval(secs => $2)",
            name_hash,
            float(window_s),
        )
        or 0
    )


async def take_name_slot(conn: asyncpg.Connection, name_hash: str, delay_s: float) -> float:
    """Reserve the next attempt of a paced name.

    0 when reserved (it runs after delay_s), else the seconds until the attempt already waiting
    is done."""
    taken = await conn.fetchval(
        "UPDATE auth.sign_in_names SET next_attempt_at = now() + make_interval(secs => $2)"
        " WHERE name_hash = $1 AND next_attempt_at <= now() RETURNING true",
        name_hash,
        delay_s,
    )
    if taken:
        return 0.0
    left = await conn.fetchval(
        "SELECT extract(epoch FROM next_attempt_at - now()) FROM auth.sign_in_names"
        " WHERE name_hash = $1",
        name_hash,
    )
    return max(float(left or 0), 0.001)


async def record_name_failure(conn: asyncpg.Connection, name_hash: str, window_s: int) -> int:
    """Count a failure of a sign-in name; a new run starts once the last is older than the window.

    Names idle for longer than the window are forgotten."""
    window = float(window_s)
    failures = await conn.fetchval(
        "INSERT INTO auth.sign_in_names AS n (name_hash, failures) VALUES ($1, 1)"
        " ON CONFLICT (name_hash) DO UPDATE SET"
        " failures = CASE WHEN n.updated_at < now() - make_interval(secs => $2) THEN 1"
        " ELSE n.failures + 1 END, updated_at = now()"
        " RETURNING failures",
        name_hash,
        window,
    )
    await conn.execute(
        "DELETE FROM auth.sign_in_names WHERE name_hash IN (SELECT name_hash"
        " FROM auth.sign_in_names WHERE updated_at < now() - make_interval(secs => $1) LIMIT 100)",
        window,
    )
    return failures


async def clear_name(conn: asyncpg.Connection, name_hash: str) -> None:
    """Forget a sign-in name's failures (it signed in)."""
    await conn.execute("DELETE FROM auth.sign_in_names WHERE name_hash = $1", name_hash)


async def record_success(conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
    """Reset failures and note the sign-in time."""
    await conn.execute(
        "UPDATE auth.users SET failed_logins = 0, locked_until = NULL, last_login_at = now()"
        " WHERE id = $1",
        user_id,
    )


async def source_locked(conn: asyncpg.Connection, source: str) -> bool:
    """True while a source address is locked out."""
    return bool(
        await conn.fetchval(
            "SELECT locked_until > now() FROM auth.login_failures WHERE source = $1", source
        )
    )


async def record_source_failure(
    conn: asyncpg.Connection, source: str, max_failures: int, window_s: int, lockout_s: int
) -> int:
    """Count a failure from `source` in its window; lock the source at `max_failures`."""
    return await conn.fetchval(
        "INSERT INTO auth.login_failures AS f (source, failures, window_start)"
        " VALUES ($1, 1, now())"
        " ON CONFLICT (source) DO UPDATE SET"
        " failures = CASE WHEN f.window_start < now() - make_interval(secs => $3) THEN 1"
        " ELSE f.failures + 1 END,"
        " window_start = CASE WHEN f.window_start < now() - make_interval(secs => $3) THEN now()"
        " ELSE f.window_start END,"
        " locked_until = CASE WHEN f.window_start >= now() - make_interval(secs => $3)"
        " AND f.failures + 1 >= $2 THEN now() + make_interval(secs => $4) ELSE f.locked_until END"
        " RETURNING failures",
        source,
        max_failures,
        float(window_s),
        float(lockout_s),
    )
