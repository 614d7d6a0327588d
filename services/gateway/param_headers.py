"""`Mcp-Param-*` headers (SEP-2243, 2026-07-28): tool arguments mirrored into request headers.

A tool's input schema marks properties with `x-mcp-header`, and a `tools/call` mirrors their
values into `Mcp-Param-<name>` headers (values that are not plain printable ASCII as
`=?base64?...?=`), so intermediaries can route on them.

The gateway checks a client's headers against the call's arguments (the SDK's comparison: a
header decoded, then matched; a missing, extra, malformed or mismatching one is -32020, HTTP
400) and sends the upstream the headers of the arguments it forwards. Tools without annotations,
nearly all of them, cost one empty-dict check per call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mcp.shared.inbound import mcp_param_headers, validate_mcp_param_headers

from services.gateway.jsonrpc import HEADER_MISMATCH, RpcFault
from services.gateway.routing_table import ToolEntry

PREFIX = "mcp-param-"


def received(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """A request's `Mcp-Param-*` headers, duplicates kept.

    Names are lower-case; values are without the surrounding whitespace RFC 9110 excludes from a
    field value."""
    return tuple((k.lower(), v.strip()) for k, v in headers if k.lower().startswith(PREFIX))


def check(
    tool: ToolEntry, arguments: Mapping[str, Any], headers: tuple[tuple[str, str], ...]
) -> None:
    """Refuse a 2026-07-28 call whose `Mcp-Param-*` headers disagree with its arguments."""
    if not tool.param_headers:
        return
    names = [name for name, _ in headers]
    if len(set(names)) != len(names):
        raise RpcFault(HEADER_MISMATCH, "An Mcp-Param header appears more than once.")
    schema = tool.definition.get("inputSchema")
    rejection = validate_mcp_param_headers(schema, arguments, dict(headers))
    if rejection is not None:
        raise RpcFault(rejection.code, rejection.message, rejection.data)


def for_upstream(tool: ToolEntry, arguments: Mapping[str, Any]) -> dict[str, str] | None:
    """The `Mcp-Param-*` headers of a call to `tool` with `arguments` (None: the tool has none)."""
    if not tool.param_headers:
        return None
    return mcp_param_headers(tool.param_headers, arguments)
