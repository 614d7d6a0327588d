"""Enqueue auth events in the caller's transaction, built from records (never secrets)."""

from __future__ import annotations

from typing import Any

import asyncpg

from libs.common import outbox
from libs.common.authn import Principal
from libs.common.events import EventType, OrgChanged, TeamChanged, UserChanged


async def emit(
    conn: asyncpg.Connection,
    kind: EventType[Any],
    payload: Any,
    actor: Principal | None,
    org: str | None = None,
) -> None:
    """Store the event with the change; the outbox relays it after commit."""
    who = actor.id if actor is not None else None
    await outbox.enqueue(conn, "auth", kind.event(payload, source="auth", actor=who, org=org))


def user_payload(row: asyncpg.Record) -> UserChanged:
    """UserChanged from a users row."""
    return UserChanged(
        str(row["id"]),
        row["username"],
        row["email"],
        row["display_name"],
        row["platform_role"],
        row["status"],
    )


def org_payload(row: asyncpg.Record) -> OrgChanged:
    """OrgChanged from an orgs row."""
    return OrgChanged(str(row["id"]), row["slug"], row["name"], row["plan"], row["status"])


def team_payload(row: asyncpg.Record, parent: str | None = None) -> TeamChanged:
    """TeamChanged from a teams row."""
    return TeamChanged(str(row["id"]), row["name"], str(row["org_id"]), parent, row["description"])
