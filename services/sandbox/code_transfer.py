"""Code tools in the registry's export and import (MCPBox): approved content out, new tools in."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticError

from libs.common.errors import Conflict, Unprocessable
from libs.common.rpc_types import CodeTools, CodeToolsExport, CodeToolsImport, CodeToolsImported
from services.sandbox import codetools
from services.sandbox.runtime import Runtime
from services.sandbox.schemas import ToolCreate
from services.sandbox.store import modules as modules_store
from services.sandbox.store import tools as tools_store
from services.sandbox.validation import validate_code

MAX_IMPORT = 500
FIELDS = ("name", "server", "description", "code", "input_schema")


async def export_tools(rt: Runtime, request: CodeToolsExport) -> CodeTools:
    """Every approved tool at its approved version, with the server it is served under."""
    async with rt.pool.acquire() as conn:
        rows = await tools_store.approved_content(conn)
    wanted = set(request.servers) if request.servers is not None else None
    return CodeTools(
        tools=[
            {k: row[k] for k in FIELDS} for row in rows if wanted is None or row["server"] in wanted
        ]
    )


def _problems(tools: list[Any], allowed: list[str]) -> dict[str, str]:
    """Per tool (`tools[i]`), why it cannot be imported; empty when all can."""
    problems: dict[str, str] = {}
    names: set[str] = set()
    for i, raw in enumerate(tools):
        try:
            body = ToolCreate.model_validate(raw)
        except PydanticError as exc:
            problems[f"code_tools[{i}]"] = exc.errors()[0]["msg"]
            continue
        if body.name in names:
            problems[f"code_tools[{i}]"] = f"the name {body.name!r} is given twice"
        names.add(body.name)
        report = validate_code(body.code, body.input_schema, allowed)
        if not report["valid"]:
            problems[f"code_tools[{i}]"] = report["problems"][0]["message"]
    return problems


async def import_tools(rt: Runtime, request: CodeToolsImport) -> CodeToolsImported:
    """Validate every tool, then create the new ones in one transaction (all or nothing).

    Imported tools follow the policy like created ones: pending approval unless it approves at
    once; a name that exists is a conflict (`on_conflict` fail) or skipped."""
    if len(request.tools) > MAX_IMPORT:
        raise Unprocessable("Too many code tools.", details={"fields": {"code_tools": "≤ 500"}})
    policy = await rt.policy()
    async with rt.pool.acquire() as conn, conn.transaction():
        allowed = [r["name"] for r in await modules_store.list_modules(conn)]
        problems = _problems(request.tools, allowed)
        if problems:
            raise Unprocessable("Some code tools are invalid.", details={"fields": problems})
        bodies = [ToolCreate.model_validate(t).model_dump() for t in request.tools]
        existing = [b["name"] for b in bodies if await tools_store.get_tool(conn, b["name"])]
        if existing and request.on_conflict == "fail":
            raise Conflict("Some code tools exist.", details={"conflicts": existing})
        created = [b["name"] for b in bodies if b["name"] not in existing]
        if not request.dry_run:
            for body in bodies:
                if body["name"] in created:
                    await codetools.create_tool(
                        conn, body, request.actor, not policy.require_tool_approval
                    )
    return CodeToolsImported(created=created, skipped=existing)
