"""Approval decisions: approve, reject or revoke a request, and what that does to its subject."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import asyncpg

from libs.common.errors import Conflict, NotFound, Unprocessable
from libs.common.events import APPROVAL_DECIDED, CODE_TOOL_UPDATED, ApprovalChanged
from services.sandbox import allowlist
from services.sandbox.codetools import emit, plain, tool_event
from services.sandbox.runtime import Runtime
from services.sandbox.store import approvals as approvals_store
from services.sandbox.store import hosts as hosts_store
from services.sandbox.store import modules as modules_store
from services.sandbox.store import tools as tools_store

DECISIONS = {"approve": "approved", "reject": "rejected"}
KINDS = {"tools": "tool", "modules": "module", "network": "network"}


def approval_out(row: asyncpg.Record) -> dict[str, Any]:
    """An approval as the API shows it."""
    return plain(row)


async def decide(
    rt: Runtime,
    conn: asyncpg.Connection,
    kind: str,
    approval_id: uuid.UUID,
    action: str,
    reason: str | None,
    actor: str | None,
) -> asyncpg.Record:
    """Apply approve / reject / revoke to an approval and its subject; publish the decision."""
    row = await approvals_store.get_approval(conn, approval_id)
    if row is None or row["kind"] != kind:
        raise NotFound("No such approval.", details={"id": str(approval_id)})
    if action == "revoke":
        if row["status"] != "approved":
            raise Conflict(
                "Only an approved request can be revoked.", details={"status": row["status"]}
            )
        status = "revoked"
    else:
        if row["status"] != "pending":
            raise Conflict("This request was decided already.", details={"status": row["status"]})
        status = DECISIONS[action]
    await _apply(rt, conn, row, status, actor)
    decided = await approvals_store.decide_approval(conn, approval_id, status, reason, actor)
    payload = ApprovalChanged(
        id=str(row["id"]),
        kind=kind,
        subject=(row["details"] or {}).get("name", row["subject"]),
        status=status,
        action=action,
        server=row["server"],
        version=row["version"],
        reason=reason,
    )
    await emit(conn, APPROVAL_DECIDED, payload, actor)
    return decided


async def _apply(
    rt: Runtime, conn: asyncpg.Connection, row: asyncpg.Record, status: str, actor: str | None
) -> None:
    """What a decision does to the tool, module allowlist or host allowlist."""
    if row["kind"] == "tool":
        tool = await tools_store.get_tool(conn, row["subject"], lock=True)
        if tool is None:
            raise Conflict("The tool no longer exists.")
        if status == "approved":
            if tool["version"] != row["version"]:
                raise Conflict("The tool changed since this request; decide the newer one.")
            tool = await tools_store.set_tool_status(conn, tool["id"], "approved", row["version"])
        elif status == "rejected":
            tool = await tools_store.set_tool_status(
                conn, tool["id"], "rejected", tool["approved_version"]
            )
        else:
            tool = await tools_store.set_tool_status(conn, tool["id"], "revoked", None)
        await emit(conn, CODE_TOOL_UPDATED, tool_event(tool), actor)
    elif row["kind"] == "network":
        host = row["subject"]
        if status == "approved":
            host = _approvable_host(rt, host)
            await hosts_store.insert_allowed_host(conn, row["server"], host, actor)
        elif status == "revoked":
            await hosts_store.delete_allowed_host(conn, row["server"], host)
            with contextlib.suppress(ValueError):  # approved in canonical form
                await hosts_store.delete_allowed_host(
                    conn, row["server"], allowlist.normalise(host)
                )
        rt.egress.forget_hosts(row["server"])
    elif row["kind"] == "module":
        if status == "approved":
            await modules_store.insert_module(conn, row["subject"], actor)
        elif status == "revoked":
            await modules_store.delete_module(conn, row["subject"])


def _approvable_host(rt: Runtime, host: str) -> str:
    """The canonical entry of a requested host.

    422 for wildcards of everything and internal addresses (a request opened before these rules,
    or by hand)."""
    try:
        entry = allowlist.normalise(host)
    except ValueError as exc:
        raise Unprocessable(
            "This request does not name a host.", details={"fields": {"subject": str(exc)}}
        ) from None
    rt.egress.check_hosts([entry])
    return entry


def check_kind(kind: str) -> str:
    """The approval kind of a path segment (tools → tool), or 404."""
    if kind not in KINDS:
        raise NotFound("No such approval list.", details={"kind": kind})
    return KINDS[kind]
