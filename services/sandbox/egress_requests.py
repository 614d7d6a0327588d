"""Egress allowlist changes, only through network approvals: request, approve, remove."""

from __future__ import annotations

import asyncpg

from libs.common import outbox
from libs.common.events import APPROVAL_DECIDED, APPROVAL_REQUESTED, ApprovalChanged, EventType
from services.sandbox import approvals
from services.sandbox.runtime import Runtime
from services.sandbox.store import SCHEMA
from services.sandbox.store import approvals as approvals_store
from services.sandbox.store import hosts as hosts_store

APPROVED_BY_REQUESTER = "requested by an approver"


async def request_hosts(
    rt: Runtime,
    conn: asyncpg.Connection,
    server: str,
    hosts: list[str],
    actor: str,
    approve: bool,
) -> list[asyncpg.Record]:
    """One network request per host (an open one is reused); an approver's are approved now."""
    rows = []
    for host in hosts:
        row = await approvals_store.insert_approval(
            conn,
            kind="network",
            subject=host,
            server=server,
            requested_by=actor,
            details={"via": "allowed-hosts"},
        )
        if row is None:
            row = await approvals_store.get_pending_network_approval(conn, server, host)
        else:
            await _emit(conn, APPROVAL_REQUESTED, row, "request", actor)
        if approve and row is not None:
            row = await approvals.decide(
                rt, conn, "network", row["id"], "approve", APPROVED_BY_REQUESTER, actor
            )
        if row is not None:
            rows.append(row)
    return rows


async def remove_hosts(conn: asyncpg.Connection, server: str, hosts: list[str], actor: str) -> None:
    """Take hosts off the allowlist; the approvals that put them there become revoked."""
    for host in hosts:
        await hosts_store.delete_allowed_host(conn, server, host)
        for row in await approvals_store.revoke_network_approvals(
            conn, server, host, "removed from the allowlist", actor
        ):
            await _emit(conn, APPROVAL_DECIDED, row, "revoke", actor)


async def _emit(
    conn: asyncpg.Connection,
    kind: EventType[ApprovalChanged],
    row: asyncpg.Record,
    action: str,
    actor: str,
) -> None:
    """An approval event in the caller's transaction."""
    payload = ApprovalChanged(
        id=str(row["id"]),
        kind="network",
        subject=row["subject"],
        status=row["status"],
        action=action,
        server=row["server"],
        reason=row["reason"],
    )
    await outbox.enqueue(conn, SCHEMA, kind.event(payload, source=SCHEMA, actor=actor))
