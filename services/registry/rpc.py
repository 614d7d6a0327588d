"""rpc.registry.* handlers: the routable snapshot, a hosted server's spec, grantable servers.

The routable snapshot is what the gateway starts from; the spec of one hosted server is what
the sandbox launches; the servers an org may name in a grant are what auth binds grants to."""

from __future__ import annotations

from typing import Any

import orjson
import structlog

from libs.common import rpc_types, tenancy
from libs.common.errors import NotFound, ValidationError
from libs.common.rpc_types import (
    HostedReply,
    HostedRequest,
    PoliciesRequest,
    PolicySet,
    ResolvedServer,
    ResolveReply,
    ResolveRequest,
    ServerView,
    Snapshot,
    SnapshotRequest,
    ToolUpstream,
)
from services.registry import certification, config_keys, policies, sources, views
from services.registry.context import Registry
from services.registry.crypto import SecretUnreadable
from services.registry.store import secrets as secrets_store
from services.registry.store import servers as servers_store
from services.registry.store import sources as sources_store
from services.registry.store import tools as tools_store

log = structlog.get_logger()

MAX_LIMIT = 200
MAX_REPLY_BYTES = 900_000


def _params(request: SnapshotRequest) -> tuple[list[str] | None, int, int]:
    """The page asked for: offset and limit non-negative, the limit capped."""
    for name, value in (("offset", request.offset), ("limit", request.limit)):
        if value < 0:
            raise ValidationError(
                f"{name} must be a non-negative integer.", details={"field": name}
            )
    return request.names, request.offset, max(1, min(request.limit, MAX_LIMIT))


async def snapshot(reg: Registry, request: SnapshotRequest) -> Snapshot:
    """A page of server views with tools and decrypted secrets, under the NATS payload limit."""
    names, offset, limit = _params(request)
    async with reg.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        version = await servers_store.current_version(conn)
        cfg = await reg.config(conn)
        servers = await servers_store.list_page(conn, names, offset, limit + 1)
        page = servers[:limit]
        ids = [s["id"] for s in page]
        tools = await tools_store.list_for_servers(conn, ids)
        secrets = await secrets_store.list_secrets(conn, ids)
        source_rows = await sources_store.list_for_servers(conn, ids)
        certs = await certification.of_servers(conn, page)
    upstreams = {
        row["id"]: ToolUpstream(
            source_id=str(row["id"]),
            transport=row["transport"],
            url=row["url"],
            headers=sources.headers_of(reg, row),
        )
        for row in source_rows
    }
    by_tools: dict[Any, list] = {}
    for tool in tools:
        by_tools.setdefault(tool["server_id"], []).append(tool)
    by_secrets: dict[Any, list] = {}
    for row in secrets:
        by_secrets.setdefault(row["server_id"], []).append(row)
    out: list[ServerView] = []
    size = 0
    consumed = 0  # servers of the page dealt with, skipped ones included
    for server in page:
        consumed += 1
        try:
            view = views.snapshot_server(
                server,
                by_tools.get(server["id"], []),
                by_secrets.get(server["id"], []),
                reg.box,
                upstreams,
                certs.get(server["id"]),
            )
        except SecretUnreadable as exc:
            # one server sealed under a key this replica lacks must not hide all the others;
            # it is left out (not routable) and said loudly
            log.error("server_secrets_unreadable", server=server["name"], error=str(exc))
            continue
        size += len(orjson.dumps(view))
        if out and size > MAX_REPLY_BYTES:
            consumed -= 1  # it goes first on the next page
            break
        out.append(view)
    more = consumed < len(page) or len(servers) > limit
    return Snapshot(
        version=version,
        settings={k: cfg[k] for k, key in config_keys.KEYS.items() if key.routing},
        servers=out,
        next_offset=offset + consumed if more else None,
    )


async def hosted(reg: Registry, request: HostedRequest) -> HostedReply:
    """One server's launch spec by name: `{"server": view}`; 404 when it is not registered."""
    name = request.server
    if not name:
        raise ValidationError("`server` (a server name) is required.", details={"field": "server"})
    async with reg.pool.acquire() as conn:
        servers = await servers_store.list_page(conn, [name], 0, 1)
        secrets = await secrets_store.list_secrets(conn, [servers[0]["id"]]) if servers else []
    if not servers:
        raise NotFound(f"Server {name!r} is not registered.", details={"server": name})
    return HostedReply(server=views.hosted_server(servers[0], secrets, reg.box))


MAX_RESOLVE = 200


async def resolve(reg: Registry, request: ResolveRequest) -> ResolveReply:
    """The servers named (by name, path or id) that `org` owns or was shared.

    They are what auth binds a grant to. Another org's server is left out exactly like one that
    does not exist."""
    org, refs = request.org, request.servers
    if not org:
        raise ValidationError("org must be an org id.", details={"field": "org"})
    if len(refs) > MAX_RESOLVE or not all(refs):
        raise ValidationError(
            f"servers must be a list of at most {MAX_RESOLVE} server names or ids.",
            details={"field": "servers"},
        )
    out = []
    async with reg.pool.acquire() as conn:
        for ref in refs:
            server = await servers_store.get_server(conn, ref)
            if server is None or not tenancy.server_ref(server).lent_to(org):
                continue
            out.append(
                ResolvedServer(
                    ref=ref,
                    id=str(server["id"]),
                    name=server["name"],
                    org=server["org"],
                    shared=server["org"] != org,
                )
            )
    return ResolveReply(servers=out)


async def policy_set(reg: Registry, request: PoliciesRequest) -> PolicySet:
    """The enabled policies and approvals of the orgs named (all orgs: every org with some)."""
    if request.orgs is not None and (len(request.orgs) > MAX_RESOLVE or not all(request.orgs)):
        raise ValidationError(
            f"orgs must be a list of at most {MAX_RESOLVE} org ids.", details={"field": "orgs"}
        )
    async with reg.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        return PolicySet(orgs=await policies.policy_sets(conn, request.orgs))


async def serve(reg: Registry) -> None:
    """Answer rpc.registry.* (queue group: registry)."""

    async def on_snapshot(request: SnapshotRequest) -> Snapshot:
        return await snapshot(reg, request)

    async def on_hosted(request: HostedRequest) -> HostedReply:
        return await hosted(reg, request)

    async def on_resolve(request: ResolveRequest) -> ResolveReply:
        return await resolve(reg, request)

    await reg.bus.answer(rpc_types.REGISTRY_SNAPSHOT, on_snapshot)
    await reg.bus.answer(rpc_types.REGISTRY_HOSTED, on_hosted)
    await reg.bus.answer(rpc_types.REGISTRY_RESOLVE, on_resolve)

    async def on_policies(request: PoliciesRequest) -> PolicySet:
        return await policy_set(reg, request)

    await reg.bus.answer(rpc_types.REGISTRY_POLICIES, on_policies)
