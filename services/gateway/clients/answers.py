"""How the MCP endpoints answer: JSON-RPC messages as JSON responses, SSE stream settings."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from services.gateway.jsonrpc import HTTP_STATUS, MODERN_HTTP_STATUS, RpcFault, error

SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}
KEEPALIVE_S = 15.0


def json_message(
    message: dict[str, Any], status: int = 200, headers: dict | None = None
) -> Response:
    """A JSON-RPC message as an HTTP response."""
    return Response(orjson.dumps(message), status, headers=headers, media_type="application/json")


def fault_message(
    request_id: Any, fault: RpcFault, modern: bool, headers: dict | None = None
) -> Response:
    """A JSON-RPC error with the HTTP status its code maps to."""
    table = MODERN_HTTP_STATUS if modern else HTTP_STATUS
    msg = error(request_id, fault.code, fault.message, fault.data)
    return json_message(msg, fault.status or table.get(fault.code, 200), headers)
