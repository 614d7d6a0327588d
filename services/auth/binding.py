"""Bind grants stored before grants named server ids (docs/TENANCY.md): once, at start."""

from __future__ import annotations

import asyncio
import uuid
from itertools import groupby

import asyncpg
import structlog

from libs.common.bus import Bus
from libs.common.errors import ApiError
from libs.common.events import GRANT_UPDATED, GrantChanged
from services.auth.events_out import emit
from services.auth.servers import resolve
from services.auth.store import teams

log = structlog.get_logger()
RETRY_MAX_S = 30.0


async def bind_unbound(pool: asyncpg.Pool, bus: Bus) -> tuple[int, int]:
    """Bind each unbound grant to the server its name names in its team's org.

    The server is the org's own or one shared with it; a name of another org's server, or of
    none, stays unbound (it gives nothing). Returns (bound, left unbound)."""
    async with pool.acquire() as conn:
        rows = await teams.list_unbound_grants(conn)
    bound = left = 0
    for org_id, group in groupby(rows, key=lambda r: r["org_id"]):
        grants = list(group)
        org = str(org_id)
        found = await resolve(bus, org, sorted({g["server"] for g in grants}))
        for grant in grants:
            server = found.get(grant["server"])
            if server is None:
                left += 1
                log.warning("grant_left_unbound", grant=str(grant["id"]), team=grant["team"])
                continue
            async with pool.acquire() as conn, conn.transaction():
                row = await teams.bind_grant(conn, grant["id"], uuid.UUID(server.id))
                if row is None:
                    continue
                payload = GrantChanged(
                    str(row["id"]),
                    grant["team"],
                    org,
                    row["server"],
                    sorted(row["permissions"]),
                    list(row["tools"]) if row["tools"] is not None else None,
                    server.id,
                )
                await emit(conn, GRANT_UPDATED, payload, None, org)
                bound += 1
    return bound, left


async def bind_forever(pool: asyncpg.Pool, bus: Bus) -> None:
    """Bind the unbound grants, retrying while the registry cannot be asked."""
    delay = 1.0
    while True:
        try:
            bound, left = await bind_unbound(pool, bus)
        except ApiError as exc:
            log.info("grant_binding_retrying", error=exc.message, in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            continue
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("grant_binding_retrying", error=str(exc), in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            continue
        if bound or left:
            log.info("grants_bound", bound=bound, left_unbound=left)
        return
