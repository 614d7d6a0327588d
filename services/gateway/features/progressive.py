"""Progressive exposure: three meta-tools (search, describe, call) instead of thousands of tools."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from services.gateway import tool_access
from services.gateway.features import task_spec
from services.gateway.features.tool_search import Key, ToolIndex
from services.gateway.jsonrpc import INVALID_PARAMS, RpcFault
from services.gateway.routing_table import ToolEntry

if TYPE_CHECKING:
    from services.gateway.call_context import CallContext
    from services.gateway.core import Core

MODES = frozenset({"all", "progressive"})
ALIASES = {"direct": "all", "": ""}
SEARCH, DESCRIBE, CALL = "search_tools", "describe_tool", "call_tool"
MAX_LIMIT = 50
DESCRIPTION_CHARS = 300

META_TOOLS: list[dict[str, Any]] = [
    {
        "name": SEARCH,
        "title": "Search tools",
        "description": (
            "Find tools you may call, across every connected MCP server, by what you want to do. "
            "Returns the best matches first (name, server, description). Then call describe_tool "
            "for a tool's input schema and call_tool to run it."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "What you need, in plain words, e.g. 'open a GitHub issue' "
                    "or 'list kubernetes pods'.",
                    "minLength": 1,
                },
                "limit": {
                    "type": "integer",
                    "description": "How many tools to return (default 10).",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": 10,
                },
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
    },
    {
        "name": DESCRIBE,
        "title": "Describe a tool",
        "description": (
            "The full definition of one tool found with search_tools: description, input schema "
            "(JSON Schema of its arguments), output schema and annotations."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "The tool name from search_tools."}
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        "annotations": {"readOnlyHint": True, "idempotentHint": True, "openWorldHint": False},
    },
    {
        "name": CALL,
        "title": "Call a tool",
        "description": (
            "Run one tool found with search_tools, with arguments matching its input schema "
            "(see describe_tool). Returns the tool's own result."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "description": "The tool name from search_tools."},
                "arguments": {
                    "type": "object",
                    "description": "The tool's arguments.",
                    "additionalProperties": True,
                },
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        "annotations": {"openWorldHint": True},
    },
]
META_NAMES = frozenset(t["name"] for t in META_TOOLS)


def parse_mode(value: str | None) -> str:
    """`all`, `progressive` or '' (not chosen); anything else is -32602."""
    if value is None:
        return ""
    mode = ALIASES.get(value.strip().lower(), value.strip().lower())
    if mode and mode not in MODES:
        raise RpcFault(
            INVALID_PARAMS, f"Unknown exposure mode {value!r}.", {"allowed": sorted(MODES)}
        )
    return mode


class Progressive:
    """The meta-tools of one gateway; search runs over a BM25 index kept in step with the table."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.index = ToolIndex()

    def enabled(self, ctx: CallContext) -> bool:
        """The request's exposure: `?exposure=`, else GATEWAY_EXPOSURE_MODE, else the registry's."""
        mode = (
            getattr(ctx, "exposure", "")
            or parse_mode(self.core.settings.exposure_mode)
            or parse_mode(str(self.core.table.settings.get("exposure_mode") or ""))
        )
        return mode == "progressive"

    def handles(self, params: dict[str, Any], ctx: CallContext) -> bool:
        """True for a tools/call of a meta-tool in progressive mode."""
        return params.get("name") in META_NAMES and self.enabled(ctx)

    def list_result(self, ctx: CallContext) -> dict[str, Any]:
        """tools/list in progressive mode: exactly the three meta-tools."""
        result: dict[str, Any] = {"tools": [dict(t) for t in META_TOOLS]}
        if ctx.modern:
            result["ttlMs"] = self.core.settings.list_ttl_ms
            result["cacheScope"] = "private"
        return result

    async def call(self, params: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """Run one meta-tool."""
        name = params["name"]
        if "task" in params and task_spec.in_session(ctx):  # the meta-tools declare no task support
            raise task_spec.cannot_run_as_task(name)
        arguments = params.get("arguments")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise RpcFault(INVALID_PARAMS, "params.arguments must be an object.")
        if name == SEARCH:
            return self._result(self.search(arguments, ctx), ctx)
        if name == DESCRIBE:
            return self._result(self.describe(arguments, ctx), ctx)
        target = arguments.get("name")
        if target in META_NAMES:
            raise RpcFault(INVALID_PARAMS, f"call_tool cannot call {target}.", {"tool": target})
        inner: dict[str, Any] = {"name": target, "arguments": arguments.get("arguments")}
        if params.get("_meta"):
            inner["_meta"] = params["_meta"]
        return await self.core.call_tool(inner, ctx)  # the direct call path: grants, audit

    def _visible(self, ctx: CallContext) -> dict[Key, tuple[str, ToolEntry]]:
        """The tools the caller may execute through this endpoint, by index key."""
        table = self.core.table
        if self.index.version != table.version:
            self.index.rebuild(table.by_public.values(), table.version)
        return {(t.server, t.name): (name, t) for name, t in tool_access.visible(table, ctx)}

    def search(self, arguments: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """search_tools: BM25 over the caller's executable tools."""
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise RpcFault(INVALID_PARAMS, "search_tools needs a non-empty query.")
        limit = arguments.get("limit", 10)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise RpcFault(INVALID_PARAMS, f"limit must be an integer from 1 to {MAX_LIMIT}.")
        visible = self._visible(ctx)
        hits = self.index.search(query, visible, limit)
        tools = []
        for key, score in hits:
            name, tool = visible[key]
            description = str(tool.definition.get("description") or "")
            if len(description) > DESCRIPTION_CHARS:
                description = description[: DESCRIPTION_CHARS - 1] + "…"
            tools.append(
                {"name": name, "server": tool.server, "description": description, "score": score}
            )
        return {"query": query, "tools": tools}

    def describe(self, arguments: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """describe_tool: the tool as a direct tools/list would list it."""
        name = arguments.get("name")
        # unknown or not executable: the same errors as a direct call
        tool = tool_access.resolve(self.core.table, name, ctx)
        listed = tool.public if ctx.server is None else tool.name
        return {"tool": tool.as_listed(listed), "server": tool.server}

    @staticmethod
    def _result(structured: dict[str, Any], ctx: CallContext) -> dict[str, Any]:
        """A CallToolResult with the JSON both as text and as structured content."""
        text = orjson.dumps(structured).decode()
        result: dict[str, Any] = {
            "content": [{"type": "text", "text": text}],
            "structuredContent": structured,
            "isError": False,
        }
        if ctx.modern:
            result["resultType"] = "complete"
        return result
