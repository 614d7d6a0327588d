"""The record of a tools/call: ToolCalled's fields, as the gateway.tool.called event carries."""

import dataclasses

from libs.common import wire
from libs.common.authn import Principal
from libs.common.events import TOOL_CALLED, Event, ToolCalled
from libs.common.redaction import MASK
from libs.common.rpc_types import ServerView
from services.gateway.call_context import CallContext
from services.gateway.call_records import CallRecords
from services.gateway.jsonrpc import FORBIDDEN, RpcFault
from services.gateway.routing_table import RoutingTable
from services.gateway.settings import GatewaySettings
from services.gateway.tool_calls import ToolCall

ALICE = Principal(kind="api_key", id="u1", name="alice", credential_id="k1", org="org-a")
FIELDS = {f.name for f in dataclasses.fields(ToolCalled)}


def table() -> RoutingTable:
    """One server, `files`, of org-b, with the tool `read`."""
    doc = {
        "id": "id-files",
        "name": "files",
        "org": "org-b",
        "transport": "streamable-http",
        "url": "http://127.0.0.1:1/mcp",
        "enabled": True,
        "status": "healthy",
        "tools": [{"name": "read", "description": "r", "input_schema": {"type": "object"}}],
    }
    routes = RoutingTable()
    routes.replace([wire.decode(ServerView, doc)])
    return routes


def decoded(record: dict) -> ToolCalled:
    """The payload as the audit service reads it from the event."""
    return TOOL_CALLED.decode(Event(type=TOOL_CALLED.name, source="gateway", data=record))


def test_the_record_of_an_answered_call_has_every_field_of_tool_called() -> None:
    routes = table()
    call = ToolCall({"name": "files__read", "arguments": {"path": "/x"}}, CallContext(ALICE))
    call.tool, call.upstream_ms, call.size = routes.by_public["files__read"], 1.23456, 42
    record = CallRecords(GatewaySettings(), routes, None).record_of(call, 2.5)
    assert set(record) == FIELDS
    payload = decoded(record)
    assert (payload.server, payload.tool, payload.status) == ("files", "read", "ok")
    assert (payload.org, payload.caller_org) == ("org-b", "org-a")  # the server's, the caller's
    assert (payload.principal_kind, payload.credential_id) == ("api_key", "k1")
    assert (payload.latency_ms, payload.upstream_ms, payload.response_bytes) == (2.5, 1.235, 42)
    assert payload.arguments == {"path": MASK}  # the default policy keeps argument names only
    assert payload.method == "tools/call" and payload.endpoint == "/mcp"


def test_the_record_of_a_call_refused_before_its_tool_is_known_names_what_was_asked() -> None:
    call = ToolCall({"name": "nope__x"}, CallContext(ALICE, endpoint="/mcp/{team}", team="t"))
    call.refused(RpcFault(FORBIDDEN, "no"))
    record = CallRecords(GatewaySettings(), table(), None).record_of(call, 0.5)
    assert set(record) == FIELDS
    payload = decoded(record)
    assert (payload.server, payload.tool, payload.status) == ("", "nope__x", "denied")
    assert (payload.error_code, payload.team, payload.org) == (FORBIDDEN, "t", "org-a")
    assert payload.arguments is None and payload.tool_fingerprint is None
