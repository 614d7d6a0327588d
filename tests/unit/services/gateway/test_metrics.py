"""The gateway's MCP semconv metrics: labels from fixed sets, whatever callers send."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from services.gateway import metrics
from services.gateway.jsonrpc import RpcFault
from services.gateway.upstreams.transport import TransportFailure


def _series(name: str) -> set[tuple[tuple[str, str], ...]]:
    """The label sets of one histogram's `_count` samples."""
    return {
        tuple(sorted(sample.labels.items()))
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == f"{name}_count"
    }


def test_junk_methods_tools_and_versions_add_no_series() -> None:
    metrics.operation("tools/call", "other", "-32602", "junk-0").observe(0.001)
    metrics.operation("junk/0", "", "_OTHER", "2099-01-01").observe(0.001)
    metrics.upstream_duration("s", "junk/0", "", "", "junk-0").observe(0.001)
    servers = _series("mcp_server_operation_duration_seconds")
    clients = _series("mcp_client_operation_duration_seconds")
    cached = (len(metrics._OPERATIONS), len(metrics._UPSTREAM))
    for i in range(500):
        # a tool name is never taken from the request: an unresolved one is `other`
        metrics.operation("tools/call", metrics.OTHER, "-32602", f"junk-{i}").observe(0.001)
        metrics.operation(f"junk/{i}", f"tool-{i}", "_OTHER", f"2099-{i}").observe(0.001)
        metrics.upstream_duration("s", f"junk/{i}", f"t{i}", "", f"junk-{i}").observe(0.001)
    assert _series("mcp_server_operation_duration_seconds") == servers
    assert _series("mcp_client_operation_duration_seconds") == clients
    assert (len(metrics._OPERATIONS), len(metrics._UPSTREAM)) == cached
    assert not any(key[0].startswith("junk/") for key in metrics._OPERATIONS)
    count = REGISTRY.get_sample_value(
        "mcp_server_operation_duration_seconds_count",
        {
            "mcp_method_name": "other",
            "gen_ai_tool_name": "",
            "error_type": "_OTHER",
            "mcp_protocol_version": "other",
            "network_transport": "tcp",
        },
    )
    assert count is not None and count >= 501


def test_a_known_method_keeps_its_label_and_its_cached_child() -> None:
    labels = {
        "mcp_method_name": "tools/list",
        "gen_ai_tool_name": "",
        "error_type": "",
        "mcp_protocol_version": "2025-06-18",
        "network_transport": "tcp",
    }
    before = REGISTRY.get_sample_value("mcp_server_operation_duration_seconds_count", labels) or 0
    # a tool given for another method than tools/call is not a label
    metrics.operation("tools/list", "ignored", "", "2025-06-18").observe(0.002)
    after = REGISTRY.get_sample_value("mcp_server_operation_duration_seconds_count", labels)
    assert after == before + 1
    child = metrics.operation("tools/list", "", "", "2025-06-18")
    assert metrics.operation("tools/list", "x", "", "2025-06-18") is child


def test_a_tools_call_without_a_routed_tool_is_labelled_other() -> None:
    assert metrics.operation("tools/call", "", "-32602", None) is metrics.operation(
        "tools/call", "other", "-32602", ""
    )


@pytest.mark.parametrize(
    ("version", "label"),
    [("2024-11-05", "2024-11-05"), ("2026-07-28", "2026-07-28"), ("1999", "other"), ("", ""),
     (None, "")],
)  # fmt: skip
def test_protocol_versions_map_to_known_revisions(version: str | None, label: str) -> None:
    assert metrics.protocol_label(version) == label


def test_json_rpc_codes_are_error_types_when_known() -> None:
    assert metrics.error_type(-32602) == "-32602"
    assert metrics.error_type(-32011) == "-32011"
    assert metrics.error_type(-31999) == "_OTHER"  # an upstream's own code
    assert metrics.error_type("-32602") == "_OTHER"
    assert metrics.error_type(True) == "_OTHER"


def test_exceptions_map_to_a_fixed_set_of_error_types() -> None:
    assert metrics.exception_type(RpcFault(-32013, "too large")) == "-32013"
    assert metrics.exception_type(TimeoutError()) == "timeout"
    assert metrics.exception_type(asyncio.CancelledError()) == "cancelled"
    assert metrics.exception_type(TransportFailure("down")) == "TransportFailure"
    assert metrics.exception_type(type("Junk", (Exception,), {})()) == "_OTHER"


def test_an_upstream_reply_names_its_error() -> None:
    assert metrics.reply_error("tools/call", {"result": {"isError": True}}) == "tool_error"
    assert metrics.reply_error("tools/call", {"result": {"content": []}}) == ""
    assert metrics.reply_error("prompts/get", {"result": {"isError": True}}) == ""
    assert metrics.reply_error("tools/list", {"error": {"code": -32601}}) == "-32601"
    assert metrics.reply_error("tools/list", {"error": {"code": 7}}) == "_OTHER"


def test_a_timed_handshake_records_the_exception_that_ended_it() -> None:
    labels = {
        "server": "unit-handshake",
        "mcp_method_name": "initialize",
        "gen_ai_tool_name": "",
        "error_type": "TransportFailure",
        "mcp_protocol_version": "2025-11-25",
        "network_transport": "tcp",
    }
    with (
        pytest.raises(TransportFailure),
        metrics.UpstreamOperation("unit-handshake", "initialize", "2025-11-25"),
    ):
        raise TransportFailure("refused")
    count = REGISTRY.get_sample_value("mcp_client_operation_duration_seconds_count", labels)
    assert count == 1
    with metrics.UpstreamOperation("unit-handshake", "initialize", "2025-11-25") as op:
        op.reply({"error": {"code": -32602, "message": "bad version"}})
    labels["error_type"] = "-32602"
    assert REGISTRY.get_sample_value("mcp_client_operation_duration_seconds_count", labels) == 1


def test_an_upstream_session_is_counted_then_timed_when_it_ends() -> None:
    opened = metrics.upstream_session_opened("unit-session")
    assert (
        REGISTRY.get_sample_value(
            "switchboard_gateway_upstream_sessions", {"server": "unit-session"}
        )
        == 1
    )
    metrics.upstream_session_ended("unit-session", opened, "2025-06-18", metrics.SESSION_LOST)
    assert (
        REGISTRY.get_sample_value(
            "switchboard_gateway_upstream_sessions", {"server": "unit-session"}
        )
        == 0
    )
    labels = {
        "server": "unit-session",
        "mcp_protocol_version": "2025-06-18",
        "network_transport": "tcp",
        "error_type": "session_lost",
    }
    assert REGISTRY.get_sample_value("mcp_client_session_duration_seconds_count", labels) == 1
