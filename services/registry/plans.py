"""The registry's side of plans: private MCPs and scans per month (libs/common/plans.py).

The org's plan comes from auth (rpc.auth.org) and is kept a minute; an `auth.org.*` event drops
it at once on every replica (`following`). The integrator calls `require_capacity` before
creating a private MCP and before requesting a scan.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Literal

import asyncpg

from libs.common import plans, subjects
from libs.common.errors import NotFound
from libs.common.events import Event
from services.registry import orgs
from services.registry.context import Registry
from services.registry.store import plans as plans_store

PLAN_TTL_S = 60.0
LIMIT_OF = {"mcps": "max_private_mcps", "scans": "scans_per_month"}

# org id → (plan, when it was read); shared by the replica's handlers (one process, one cache)
_plans: dict[str, tuple[str, float]] = {}


async def plan_of(reg: Registry, org: str) -> str:
    """The org's plan, from the cache or auth (an unknown org: 404)."""
    cached = _plans.get(org)
    if cached is not None and time.monotonic() - cached[1] < PLAN_TTL_S:
        return cached[0]
    found = await orgs.lookup(reg, org)
    if found is None:
        raise NotFound(f"Organisation {org!r} not found.", details={"org": org})
    plan = found.plan or plans.DEFAULT_PLAN
    _plans[found.id] = (plan, time.monotonic())
    return plan


def forget(org: str | None = None) -> None:
    """Drop the cached plan of `org` (of every org when None)."""
    if org is None:
        _plans.clear()
    else:
        _plans.pop(org, None)


async def require_capacity(
    reg: Registry, conn: asyncpg.Connection, org: str, resource: Literal["mcps", "scans"]
) -> None:
    """402 PLAN_LIMIT when the org (by id) has no room for one more private MCP or scan.

    The limits are the plan's (libs/common/plans.py) with the `plan_limits` config overrides."""
    plan = await plan_of(reg, org)
    cfg = await reg.config(conn)
    limits = plans.limits_for(plan, cfg.get("plan_limits"))
    if resource == "mcps":
        used = await plans_store.count_private_mcps(conn, org)
    else:
        used = await plans_store.count_scans_this_month(conn, org)
    plans.require_room(plan, limits, LIMIT_OF[resource], used)


async def _on_org_event(event: Event) -> None:
    """An org changed (its plan, perhaps): read it afresh next time."""
    org = event.data.get("id") if isinstance(event.data, dict) else None
    forget(org if isinstance(org, str) else None)


@contextlib.asynccontextmanager
async def following(reg: Registry) -> AsyncIterator[None]:
    """Follow auth.org.* events while the service runs, dropping cached plans."""
    sub = await reg.bus.follow(subjects.AUTH_ORG_EVENTS, _on_org_event)
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
