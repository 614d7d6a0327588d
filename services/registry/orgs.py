"""Orgs as the registry keeps them: by id (docs/TENANCY.md).

A slug is resolved through the caller's principal, else by asking auth (rpc.auth.org)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog

from libs.common import rpc_types
from libs.common.authn import Principal
from libs.common.bus import RpcError
from libs.common.errors import ApiError, NotFound, Unavailable, Unprocessable
from libs.common.rpc_types import OrgReply, OrgRequest
from services.registry import permissions, servers
from services.registry.context import Registry
from services.registry.store import servers as servers_store

log = structlog.get_logger()
LOOKUP_TIMEOUT_S = 3.0
RETRY_MAX_S = 30.0


async def lookup(reg: Registry, ref: str) -> OrgReply | None:
    """The org (`id`, `slug`, `status`) named by id or slug, or None when there is none."""
    try:
        return await reg.bus.call(rpc_types.AUTH_ORG, OrgRequest(ref), timeout=LOOKUP_TIMEOUT_S)
    except RpcError as exc:
        if exc.status < 500:
            return None
        raise Unavailable("The auth service could not look the org up.") from None
    except ApiError:
        raise Unavailable("The auth service is not reachable to look the org up.") from None


async def org_id(reg: Registry, principal: Principal, ref: str) -> str:
    """An org reference (id or slug) as the org's id.

    One the caller is not in stays as given (a filter on it then matches nothing the caller may
    read)."""
    if ref in principal.orgs:
        return ref
    if ref in principal.org_slugs:
        return principal.org_slugs[ref]
    if principal.is_platform_admin:
        found = await lookup(reg, ref)
        return found.id if found else ref
    return ref


async def creation_org(reg: Registry, principal: Principal, ref: str | None) -> str | None:
    """The org (id) a new server belongs to.

    A platform admin may name any existing org (by id or slug), or none: the server is then the
    platform's; others create in an org they administer (theirs by default)."""
    if not principal.is_platform_admin:
        return permissions.creation_org(principal, ref)
    if ref is None:
        return None
    found = await lookup(reg, ref)
    if found is None or found.status == "deleted":
        raise NotFound(f"Organisation {ref!r} not found.", details={"org": ref})
    return found.id


def same_org(ref: str) -> Unprocessable:
    """422: a server is not shared with the org that owns it (nor with no org)."""
    return Unprocessable(
        "A server is shared with another org than its own.",
        details={"fields": {"org": f"{ref!r} owns the server"}},
    )


async def normalise_stored(reg: Registry) -> int:
    """Rewrite servers whose org column holds a slug to the org's id; returns how many changed.

    Slugs were stored before orgs were kept by id. Each rewrite comes with a
    `registry.server.updated` event."""
    changed = 0
    async with reg.pool.acquire() as conn:
        refs = await servers_store.list_org_refs(conn)
    for ref in refs:
        found = await lookup(reg, ref)
        if found is None:
            log.warning("server_org_unknown", org=ref)
            continue
        async with reg.pool.acquire() as conn, conn.transaction():
            for row in await servers_store.list_by_org(conn, ref):
                await servers.touch(reg, conn, row, ["org"], "registry", {"org": found.id})
                changed += 1
    return changed


async def _normalise_forever(reg: Registry) -> None:
    """normalise_stored, retried while auth cannot be asked."""
    delay = 1.0
    while True:
        try:
            changed = await normalise_stored(reg)
        except ApiError as exc:
            log.info("server_orgs_retrying", error=exc.message, in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            continue
        if changed:
            log.info("server_orgs_normalised", servers=changed)
        return


@contextlib.asynccontextmanager
async def normalising(reg: Registry) -> AsyncIterator[None]:
    """Normalise stored org references in the background while the service runs."""
    task = asyncio.create_task(_normalise_forever(reg))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
