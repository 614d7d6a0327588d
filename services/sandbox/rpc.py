"""Handlers for rpc.sandbox.*: calls into hosted servers and their discovery, on the owner."""

from __future__ import annotations

from typing import Any

from libs.common import rpc
from libs.common.bus import Bus
from libs.common.errors import ValidationError
from services.sandbox.replicas import CODE_SERVER, Replicas, server_name, timeout_of
from services.sandbox.runtime import Runtime


async def serve(bus: Bus, runtime: Runtime, code: Any = None) -> None:
    """Answer rpc.sandbox.call and rpc.sandbox.discover, and what other replicas forward."""
    replicas = runtime.replicas = Replicas(runtime)

    async def call(data: dict[str, Any]) -> dict[str, Any]:
        name = server_name(data)
        message = data.get("message")
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise ValidationError("`message` must be a JSON-RPC 2.0 object.")
        if name == CODE_SERVER and code is not None:
            return {"message": await code.call(message, timeout_of(data))}
        await runtime.require_isolation()
        return await replicas.keyed("call", data)

    async def discover(data: dict[str, Any]) -> dict[str, Any]:
        name = server_name(data)
        if name == CODE_SERVER and code is not None:
            return await code.discover()
        await runtime.require_isolation()
        return await replicas.keyed("discover", data)

    await bus.serve(rpc.SANDBOX_CALL, call, queue="sandbox")
    await bus.serve(rpc.SANDBOX_DISCOVER, discover, queue="sandbox")
    await replicas.serve()
