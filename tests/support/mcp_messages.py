"""MCP JSON-RPC messages as tests send them: the legacy (session) `initialize` request."""

from __future__ import annotations

from typing import Any


def initialize(
    client: str | dict[str, Any] | None = "t",
    capabilities: dict[str, Any] | None = None,
    version: str = "2025-11-25",
    request_id: int | str = 1,
) -> dict[str, Any]:
    """A fresh legacy `initialize` request.

    `client` is a name (clientInfo `{name, version: "1"}`), a clientInfo dict sent as it is, or
    None for no clientInfo at all."""
    params: dict[str, Any] = {"protocolVersion": version, "capabilities": dict(capabilities or {})}
    if isinstance(client, str):
        params["clientInfo"] = {"name": client, "version": "1"}
    elif client is not None:
        params["clientInfo"] = dict(client)
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}
