"""Handlers for rpc.sandbox.*: calls into hosted servers and their discovery."""

from __future__ import annotations

from typing import Any

from libs.common import rpc
from libs.common.authn import Principal
from libs.common.bus import Bus
from libs.common.errors import ValidationError
from services.sandbox.runtime import Runtime

CODE_SERVER = "code"


def _server_name(data: dict[str, Any]) -> str:
    """The `server` field, checked."""
    name = data.get("server")
    if not isinstance(name, str) or not name:
        raise ValidationError("`server` (a server name) is required.", details={"field": "server"})
    return name


def _tenant(data: dict[str, Any]) -> str | None:
    """The caller's identity for per-user servers."""
    doc = data.get("principal")
    if not isinstance(doc, dict):
        return None
    try:
        return Principal.from_dict(doc).user_id or doc.get("id")
    except (KeyError, TypeError):
        return None


async def serve(bus: Bus, runtime: Runtime, code: Any = None) -> None:
    """Answer rpc.sandbox.call and rpc.sandbox.discover."""

    async def call(data: dict[str, Any]) -> dict[str, Any]:
        name = _server_name(data)
        message = data.get("message")
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise ValidationError("`message` must be a JSON-RPC 2.0 object.")
        timeout = data.get("timeout_s")
        timeout = float(timeout) if isinstance(timeout, (int, float)) and timeout > 0 else None
        if name == CODE_SERVER and code is not None:
            return {"message": await code.call(message, timeout)}
        runtime.require_isolation()
        spec = await runtime.spec(name)
        reply = await runtime.manager.call(spec, message, _tenant(data), timeout)
        return {"message": reply}

    async def discover(data: dict[str, Any]) -> dict[str, Any]:
        name = _server_name(data)
        if name == CODE_SERVER and code is not None:
            return await code.discover()
        runtime.require_isolation()
        spec = await runtime.spec(name)
        cached = runtime.listings.get(name)
        if cached is not None and cached[0] == spec and not runtime.manager.running(name):
            return cached[1]  # a health check must not start an idle server again
        listing = await runtime.manager.discover(spec)
        runtime.listings[name] = (spec, listing)
        return listing

    await bus.serve(rpc.SANDBOX_CALL, call, queue="sandbox")
    await bus.serve(rpc.SANDBOX_DISCOVER, discover, queue="sandbox")
