"""Code tools: versioned saves, approvals and their effects, and the built-in `code` MCP server."""

from __future__ import annotations

import contextlib
import difflib
import uuid
from typing import Any

import asyncpg
import orjson

from libs.common import outbox
from libs.common.errors import Conflict, NotFound, Unprocessable
from libs.common.events import (
    APPROVAL_DECIDED,
    APPROVAL_REQUESTED,
    CODE_TOOL_CREATED,
    CODE_TOOL_DELETED,
    CODE_TOOL_UPDATED,
    ApprovalChanged,
    CodeToolChanged,
)
from services.sandbox import allowlist, modules
from services.sandbox.execution import RunRequest, run_code
from services.sandbox.runtime import SCHEMA, Runtime
from services.sandbox.store import approvals as approvals_store
from services.sandbox.store import hosts as hosts_store
from services.sandbox.store import modules as modules_store
from services.sandbox.store import tools as tools_store
from services.sandbox.validation import check_arguments, validate_code

SERVER = "code"
DECISIONS = {"approve": "approved", "reject": "rejected"}
KINDS = {"tools": "tool", "modules": "module", "network": "network"}


def plain(row: Any) -> dict[str, Any]:
    """A record as a dict with UUIDs as strings (orjson knows only the exact uuid.UUID)."""
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in dict(row).items()}


def tool_out(row: asyncpg.Record) -> dict[str, Any]:
    """A tool as the API shows it."""
    doc = plain(row)
    doc["approved"] = row["approved_version"] is not None
    doc["needs_approval"] = row["approved_version"] != row["version"]
    return doc


def approval_out(row: asyncpg.Record) -> dict[str, Any]:
    """An approval as the API shows it."""
    return plain(row)


def _tool_event(row: asyncpg.Record) -> CodeToolChanged:
    """The event payload of a tool."""
    return CodeToolChanged(
        id=str(row["id"]),
        name=row["name"],
        version=row["version"],
        status=row["status"],
        approved_version=row["approved_version"],
    )


async def _emit(conn: asyncpg.Connection, kind: Any, payload: Any, actor: str | None) -> None:
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
        await _emit(conn, APPROVAL_REQUESTED, payload, actor)
    return row


async def create_tool(
    conn: asyncpg.Connection, body: dict[str, Any], actor: str | None, auto_approve: bool
) -> asyncpg.Record:
    """Save a new tool (version 1) and ask for its approval."""
    if await tools_store.get_tool(conn, body["name"]) is not None:
        raise Conflict(f"A tool named {body['name']!r} exists.", details={"name": body["name"]})
    row = await tools_store.insert_tool(conn, body, actor)
    row = await _request_tool_approval(conn, row, actor, auto_approve)
    await _emit(conn, CODE_TOOL_CREATED, _tool_event(row), actor)
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
    """Store new content as the next version; it needs approval again unless it is the approved
    content (a rollback to it)."""
    row = await tools_store.update_tool(conn, tool["id"], fields)
    await tools_store.insert_version(conn, row, actor, note)
    approved = None
    if tool["approved_version"] is not None:
        approved = await tools_store.get_version(conn, tool["id"], tool["approved_version"])
    same = approved is not None and _content(approved) == _content(row)
    row = await _request_tool_approval(conn, row, actor, auto_approve or same)
    await _emit(conn, CODE_TOOL_UPDATED, _tool_event(row), actor)
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
    await _emit(conn, CODE_TOOL_DELETED, _tool_event(tool), actor)


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


# ---- approvals ---------------------------------------------------------------------------


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
    await _emit(conn, APPROVAL_DECIDED, payload, actor)
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
        await _emit(conn, CODE_TOOL_UPDATED, _tool_event(tool), actor)
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
        rt.forget_hosts(row["server"])
    elif row["kind"] == "module":
        if status == "approved":
            await modules_store.insert_module(conn, row["subject"], actor)
        elif status == "revoked":
            await modules_store.delete_module(conn, row["subject"])


def _approvable_host(rt: Runtime, host: str) -> str:
    """The canonical entry of a requested host; 422 for wildcards of everything and internal
    addresses (a request opened before these rules, or by hand)."""
    try:
        entry = allowlist.normalise(host)
    except ValueError as exc:
        raise Unprocessable(
            "This request does not name a host.", details={"fields": {"subject": str(exc)}}
        ) from None
    rt.check_hosts([entry])
    return entry


# ---- the built-in code server ------------------------------------------------------------


class CodeServer:
    """Approved code tools as the tools of one MCP server, `code`, reached over rpc.sandbox.*."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def _tools(self) -> list[asyncpg.Record]:
        """Approved tools with their approved content."""
        async with self.rt.pool.acquire() as conn:
            return await tools_store.approved_tools(conn)

    async def discover(self) -> dict[str, list[Any]]:
        """tools/list of the code server."""
        tools = [
            {"name": t["name"], "description": t["description"], "inputSchema": t["input_schema"]}
            for t in await self._tools()
        ]
        return {"tools": tools, "resources": [], "prompts": []}

    async def call(self, message: dict[str, Any], timeout: float | None) -> dict[str, Any] | None:
        """Answer one JSON-RPC message."""
        rid = message.get("id")
        method = message.get("method")
        if rid is None:
            return None
        if method == "initialize":
            result = {
                "protocolVersion": (message.get("params") or {}).get("protocolVersion")
                or "2025-06-18",
                "capabilities": {"tools": {"listChanged": True}},
                "serverInfo": {"name": "switchboard-code", "version": "0.1.0"},
            }
            return _ok(rid, result)
        if method == "ping":
            return _ok(rid, {})
        if method == "tools/list":
            return _ok(rid, {"tools": (await self.discover())["tools"]})
        if method != "tools/call":
            return _err(rid, -32601, f"Method {method!r} is not supported by the code server.")
        params = message.get("params") or {}
        name, args = params.get("name"), params.get("arguments") or {}
        tool = next((t for t in await self._tools() if t["name"] == name), None)
        if tool is None:
            return _err(rid, -32602, f"Unknown or unapproved tool {name!r}.")
        if not isinstance(args, dict):
            return _err(rid, -32602, "arguments must be an object.")
        problems = check_arguments(tool["input_schema"], args)
        if problems:
            return _err(rid, -32602, "Invalid arguments.", {"fields": problems})
        policy = await self.rt.policy()
        imports = validate_code(tool["code"], tool["input_schema"], [])["imports"]
        run = await run_code(
            self.rt,
            RunRequest(
                code=tool["code"],
                args=args,
                kind="call",
                tool=name,
                limits=policy.limits(),
                timeout_s=min(timeout or policy.timeout_s, policy.timeout_s),
                packages=await packages_for(self.rt, imports),
            ),
        )
        if run["ok"]:
            text = orjson.dumps(run["result"]).decode()
            return _ok(
                rid,
                {
                    "content": [{"type": "text", "text": text}],
                    "structuredContent": {"result": run["result"]},
                    "isError": False,
                },
            )
        error = run["error"] or {}
        detail = error.get("message") or run["outcome"]
        text = f"{error.get('type', run['outcome'])}: {detail}"
        if run["limit"]:
            text += f" (limit: {run['limit']})"
        return _ok(rid, {"content": [{"type": "text", "text": text}], "isError": True})


def _ok(rid: Any, result: dict[str, Any]) -> dict[str, Any]:
    """A JSON-RPC result."""
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def _err(rid: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": error}


async def packages_for(rt: Runtime, imports: list[str]) -> tuple[str, ...]:
    """Installed package dirs of allowlisted modules the code imports (what gets mounted)."""
    async with rt.pool.acquire() as conn:
        allowed = [r["name"] for r in await modules_store.list_modules(conn)]
    root = rt.layout.work_root
    return tuple(str(p) for p in modules.mounts_for(root, allowed, imports))


def check_kind(kind: str) -> str:
    """The approval kind of a path segment (tools → tool), or 404."""
    if kind not in KINDS:
        raise NotFound("No such approval list.", details={"kind": kind})
    return KINDS[kind]
