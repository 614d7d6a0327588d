"""The built-in `code` MCP server: approved code tools as its tools, each call a sandboxed run."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from services.sandbox import modules
from services.sandbox.execution import RunRequest, run_code
from services.sandbox.runtime import Runtime
from services.sandbox.store import modules as modules_store
from services.sandbox.store import tools as tools_store
from services.sandbox.validation import check_arguments, validate_code


class CodeServer:
    """Approved code tools as the tools of one MCP server, `code`, reached over rpc.sandbox.*."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def hosts(self, server: str) -> bool:
        """Whether `server` is a code server (`code`, or one a code tool was put under)."""
        async with self.rt.pool.acquire() as conn:
            return await tools_store.hosts_code_server(conn, server)

    async def _tools(self, server: str) -> list[asyncpg.Record]:
        """A code server's approved tools with their approved content."""
        async with self.rt.pool.acquire() as conn:
            return await tools_store.approved_tools(conn, server)

    async def discover(self, server: str = "code") -> dict[str, list[Any]]:
        """tools/list of one code server."""
        tools = [
            {"name": t["name"], "description": t["description"], "inputSchema": t["input_schema"]}
            for t in await self._tools(server)
        ]
        return {"tools": tools, "resources": [], "prompts": []}

    async def call(
        self, message: dict[str, Any], timeout: float | None, server: str = "code"
    ) -> dict[str, Any] | None:
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
            return _ok(rid, {"tools": (await self.discover(server))["tools"]})
        if method != "tools/call":
            return _err(rid, -32601, f"Method {method!r} is not supported by the code server.")
        params = message.get("params") or {}
        name, args = params.get("name"), params.get("arguments") or {}
        tool = next((t for t in await self._tools(server) if t["name"] == name), None)
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
