"""Code tools: versioned saves, approval requests, deletion and version diffs."""

from __future__ import annotations

import difflib
import uuid
from typing import Any

import asyncpg
import orjson

from libs.common import outbox
from libs.common.errors import Conflict, NotFound
from libs.common.events import (
    APPROVAL_REQUESTED,
    CODE_TOOL_CREATED,
    CODE_TOOL_DELETED,
    CODE_TOOL_UPDATED,
    ApprovalChanged,
    CodeToolChanged,
)
from services.sandbox.store import SCHEMA
from services.sandbox.store import approvals as approvals_store
from services.sandbox.store import tools as tools_store


def plain(row: Any) -> dict[str, Any]:
    """A record as a dict with UUIDs as strings (orjson knows only the exact uuid.UUID)."""
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in dict(row).items()}


def tool_out(row: asyncpg.Record) -> dict[str, Any]:
    """A tool as the API shows it."""
    doc = plain(row)
    doc["approved"] = row["approved_version"] is not None
    doc["needs_approval"] = row["approved_version"] != row["version"]
    return doc


def tool_event(row: asyncpg.Record) -> CodeToolChanged:
    """The event payload of a tool."""
    return CodeToolChanged(
        id=str(row["id"]),
        name=row["name"],
        version=row["version"],
        status=row["status"],
        approved_version=row["approved_version"],
        server=row["server"],
    )


async def emit(conn: asyncpg.Connection, kind: Any, payload: Any, actor: str | None) -> None:
    """Enqueue an event in the caller's transaction."""
    await outbox.enqueue(conn, SCHEMA, kind.event(payload, source=SCHEMA, actor=actor))


async def _request_tool_approval(
    conn: asyncpg.Connection, row: asyncpg.Record, actor: str | None, auto: bool
) -> asyncpg.Record:
    """Open a pending approval for the tool's current version, or approve it at once."""
    await approvals_store.supersede_tool_approvals(conn, str(row["id"]))
    if auto:
        return await tools_store.set_tool_status(conn, row["id"], "approved", row["version"])
    approval = await approvals_store.insert_approval(
        conn,
        kind="tool",
        subject=str(row["id"]),
        version=row["version"],
        requested_by=actor,
        details={"name": row["name"]},
    )
    if approval is not None:
        payload = ApprovalChanged(
            id=str(approval["id"]),
            kind="tool",
            subject=row["name"],
            status="pending",
            action="request",
            version=row["version"],
        )
        await emit(conn, APPROVAL_REQUESTED, payload, actor)
    return row


async def create_tool(
    conn: asyncpg.Connection, body: dict[str, Any], actor: str | None, auto_approve: bool
) -> asyncpg.Record:
    """Save a new tool (version 1) and ask for its approval."""
    if await tools_store.get_tool(conn, body["name"]) is not None:
        raise Conflict(f"A tool named {body['name']!r} exists.", details={"name": body["name"]})
    row = await tools_store.insert_tool(conn, body, actor)
    row = await _request_tool_approval(conn, row, actor, auto_approve)
    await emit(conn, CODE_TOOL_CREATED, tool_event(row), actor)
    return row


async def locked_tool(conn: asyncpg.Connection, ref: str) -> asyncpg.Record:
    """A tool, locked for update, or 404."""
    row = await tools_store.get_tool(conn, ref, lock=True)
    if row is None:
        raise NotFound(f"Tool {ref!r} not found.", details={"tool": ref})
    return row


async def save_version(
    conn: asyncpg.Connection,
    tool: asyncpg.Record,
    fields: dict[str, Any],
    actor: str | None,
    note: str,
    auto_approve: bool,
) -> asyncpg.Record:
    """Store new content as the next version.

    It needs approval again unless it is the approved content (a rollback to it)."""
    row = await tools_store.update_tool(conn, tool["id"], fields)
    await tools_store.insert_version(conn, row, actor, note)
    approved = None
    if tool["approved_version"] is not None:
        approved = await tools_store.get_version(conn, tool["id"], tool["approved_version"])
    same = approved is not None and _content(approved) == _content(row)
    row = await _request_tool_approval(conn, row, actor, auto_approve or same)
    await emit(conn, CODE_TOOL_UPDATED, tool_event(row), actor)
    return row


def _content(row: Any) -> tuple[str, str, bytes]:
    """What approval covers: description, code and schema."""
    return (
        row["description"],
        row["code"],
        orjson.dumps(row["input_schema"], option=orjson.OPT_SORT_KEYS),
    )


async def delete_tool(conn: asyncpg.Connection, tool: asyncpg.Record, actor: str | None) -> None:
    """Delete a tool and close its approvals."""
    await approvals_store.supersede_tool_approvals(conn, str(tool["id"]))
    await tools_store.delete_tool(conn, tool["id"])
    await emit(conn, CODE_TOOL_DELETED, tool_event(tool), actor)


def compare(a: asyncpg.Record, b: asyncpg.Record) -> dict[str, Any]:
    """A unified diff of two versions' code and what else changed."""
    diff = difflib.unified_diff(
        a["code"].splitlines(keepends=True),
        b["code"].splitlines(keepends=True),
        fromfile=f"v{a['version']}",
        tofile=f"v{b['version']}",
    )
    return {
        "a": a["version"],
        "b": b["version"],
        "code_diff": "".join(diff),
        "description_changed": a["description"] != b["description"],
        "input_schema_changed": a["input_schema"] != b["input_schema"],
    }
