"""Seats: an org's plan caps its active members (libs/common/plans.py; docs/AUTH.md)."""

from __future__ import annotations

import uuid

import asyncpg

from libs.common import plans
from services.auth.store import orgs


async def require_seat(conn: asyncpg.Connection, org_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """402 PLAN_LIMIT when making `user_id` a member would exceed the org's seats.

    A user who already is an active member takes no new seat. Call inside the transaction that
    adds the member: the org row stays locked until it ends."""
    org = await orgs.lock_for_seats(conn, org_id)
    if org is None or await orgs.role_of(conn, org_id, user_id) is not None:
        return
    used = await orgs.count_active_members(conn, org_id)
    plans.require_room(org["plan"], plans.limits_for(org["plan"]), "seats", used)
