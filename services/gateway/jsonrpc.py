"""JSON-RPC messages and the gateway's error codes (documented in docs/GATEWAY.md)."""

from __future__ import annotations

from typing import Any

from mcp_types import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
)

__all__ = [
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "MISSING_REQUIRED_CLIENT_CAPABILITY",
    "PARSE_ERROR",
    "UNSUPPORTED_PROTOCOL_VERSION",
]

# Server-defined codes (-32000..-32099) the gateway answers with.
UNAUTHENTICATED = -32001
FORBIDDEN = -32003
SESSION_NOT_FOUND = -32004
UPSTREAM_ERROR = -32010
UPSTREAM_TIMEOUT = -32011
UPSTREAM_UNAVAILABLE = -32012
RESULT_TOO_LARGE = -32013
AUDIT_UNAVAILABLE = -32014  # the call ran; its record could not be stored, its result withheld
UNAVAILABLE = -32015  # a platform service the request needs is unreachable: retry later
RATE_LIMITED = -32029

# HTTP status for protocol-level failures; method-level errors travel with 200 (legacy) or
# the SDK's table (modern).
HTTP_STATUS = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    HEADER_MISMATCH: 400,
    UNSUPPORTED_PROTOCOL_VERSION: 400,
    UNAUTHENTICATED: 401,
    SESSION_NOT_FOUND: 404,
    RATE_LIMITED: 429,
    UNAVAILABLE: 503,
}
MODERN_HTTP_STATUS = {
    **HTTP_STATUS,
    INVALID_PARAMS: 400,
    METHOD_NOT_FOUND: 404,
    MISSING_REQUIRED_CLIENT_CAPABILITY: 400,
}


class RpcFault(Exception):
    """A JSON-RPC error to send back to the client."""

    def __init__(
        self, code: int, message: str, data: Any = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.status = status  # the HTTP status, when the code's usual one does not fit

    def error(self) -> dict[str, Any]:
        """The `error` member."""
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


# codes about the client's own exchange with the gateway (credential, session, rate, envelope):
# an upstream's error with one of them is still its own answer, sent with HTTP 200
GATEWAY_CODES = frozenset(HTTP_STATUS)
CODE_RANGE = range(-(2**31), 2**31)


def well_formed(reply: dict[str, Any]) -> dict[str, Any]:
    """An upstream's JSON-RPC response, or a -32010 error in its place when it is malformed.

    Malformed is an error code that is not an integer, a message that is not a string, a result
    that is not an object; so nothing downstream ever trips over it."""
    if "error" in reply:
        err = reply["error"]
        if (
            isinstance(err, dict)
            and type(err.get("code")) is int
            and err["code"] in CODE_RANGE
            and isinstance(err.get("message", ""), str)
        ):
            return reply
        problem = "a malformed JSON-RPC error"
    elif reply.get("result") is None or isinstance(reply.get("result"), dict):
        return reply
    else:
        problem = "a result that is not an object"
    message = f"The upstream server answered with {problem}."
    return {"jsonrpc": "2.0", "id": reply.get("id"), "error": {"code": UPSTREAM_ERROR,
                                                               "message": message}}  # fmt: skip


def relayed(err: dict[str, Any]) -> RpcFault:
    """The fault for a well-formed upstream error (`well_formed` ran), relayed as it is."""
    code = err["code"]
    status = 200 if code in GATEWAY_CODES else None
    return RpcFault(code, err.get("message", ""), err.get("data"), status)


def response(request_id: Any, result: Any) -> dict[str, Any]:
    """A JSON-RPC result message."""
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error message."""
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": err}


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON-RPC notification."""
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return msg
