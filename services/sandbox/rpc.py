"""Handlers for rpc.sandbox.*: calls into hosted servers and their discovery, on the owner."""

from __future__ import annotations

from typing import Any

from libs.common import rpc_types
from libs.common.bus import Bus
from libs.common.errors import ValidationError
from libs.common.rpc_types import (
    Listing,
    SandboxCall,
    SandboxCallReply,
    SandboxDiscover,
    ScanReply,
    ScanRequest,
)
from services.sandbox import code_transfer, metrics, scanning
from services.sandbox.replicas import CODE_SERVER, Replicas, server_name, timeout_of
from services.sandbox.runtime import Runtime


async def serve(bus: Bus, runtime: Runtime, code: Any = None) -> None:
    """Answer rpc.sandbox.call, discover and scan, and what other replicas forward."""
    replicas = runtime.replicas = Replicas(runtime)

    async def call(request: SandboxCall) -> SandboxCallReply:
        # the replica verbs take the request's JSON object, forwarded to the owner as it came
        data = rpc_types.SANDBOX_CALL.encode_request(request)
        name = server_name(data)
        if request.message.get("jsonrpc") != "2.0":
            raise ValidationError("`message` must be a JSON-RPC 2.0 object.")
        if code is not None and await _is_code(code, name, request.transport):
            return SandboxCallReply(await code.call(request.message, timeout_of(data), name))
        await runtime.require_isolation()
        return rpc_types.SANDBOX_CALL.decode_reply(await replicas.keyed("call", data))

    async def discover(request: SandboxDiscover) -> Listing:
        data = rpc_types.SANDBOX_DISCOVER.encode_request(request)
        name = server_name(data)
        if code is not None and await _is_code(code, name, request.transport):
            return rpc_types.SANDBOX_DISCOVER.decode_reply(await code.discover(name))
        await runtime.require_isolation()
        return rpc_types.SANDBOX_DISCOVER.decode_reply(await replicas.keyed("discover", data))

    await bus.answer(rpc_types.SANDBOX_CALL, call, queue="sandbox")
    await bus.answer(rpc_types.SANDBOX_DISCOVER, discover, queue="sandbox")

    async def scan(request: ScanRequest) -> ScanReply:
        try:
            reply = await scanning.scan(runtime, bus, request)
        except Exception:
            metrics.scanned("error")
            raise
        metrics.scanned(reply.outcome)
        return reply

    await bus.answer(rpc_types.SANDBOX_SCAN, scan, queue="sandbox")

    async def export_code_tools(request: rpc_types.CodeToolsExport) -> rpc_types.CodeTools:
        return await code_transfer.export_tools(runtime, request)

    async def import_code_tools(request: rpc_types.CodeToolsImport) -> rpc_types.CodeToolsImported:
        return await code_transfer.import_tools(runtime, request)

    await bus.answer(rpc_types.SANDBOX_CODE_TOOLS_EXPORT, export_code_tools, queue="sandbox")
    await bus.answer(rpc_types.SANDBOX_CODE_TOOLS_IMPORT, import_code_tools, queue="sandbox")
    await replicas.serve()


async def _is_code(code: Any, name: str, transport: str | None) -> bool:
    """Whether the server is a code server.

    As the caller says (no lookup on the call path), or, from a caller that does not say, as the
    code tools' table says."""
    if name == CODE_SERVER or transport == "code":
        return True
    if transport is not None:
        return False
    return await code.hosts(name)
