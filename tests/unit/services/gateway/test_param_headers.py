"""`Mcp-Param-*` headers of a tools/call (services/gateway/param_headers.py)."""

import pytest

from services.gateway import param_headers
from services.gateway.jsonrpc import RpcFault
from services.gateway.routing_table import ToolEntry

SCHEMA = {
    "type": "object",
    "properties": {
        "region": {"type": "string", "x-mcp-header": "Region"},
        "shards": {"type": "integer", "x-mcp-header": "Shards"},
        "note": {"type": "string"},
    },
}
ROUTED = ToolEntry("geo", "route", "geo__route", {"name": "route", "inputSchema": SCHEMA})
PLAIN = ToolEntry("geo", "echo", "geo__echo", {"name": "echo", "inputSchema": {"type": "object"}})


def test_only_mcp_param_headers_are_kept_trimmed_and_with_duplicates() -> None:
    raw = [("Mcp-Param-Region", " eu "), ("host", "x"), ("mcp-param-region", "us")]
    assert param_headers.received(raw) == (("mcp-param-region", "eu"), ("mcp-param-region", "us"))


def test_matching_headers_pass_and_integers_compare_as_numbers() -> None:
    headers = (("mcp-param-region", "=?base64?ZXUtd2VzdA==?="), ("mcp-param-shards", "4.0"))
    param_headers.check(ROUTED, {"region": "eu-west", "shards": 4}, headers)


@pytest.mark.parametrize(
    "headers",
    [
        (),
        (("mcp-param-region", "us"),),
        (("mcp-param-region", "=?base64?ZXUtd2VzdA?="),),
        (("mcp-param-region", "eu-west"), ("mcp-param-region", "eu-west")),
    ],
)
def test_a_missing_mismatching_malformed_or_repeated_header_is_header_mismatch(headers) -> None:
    with pytest.raises(RpcFault) as exc:
        param_headers.check(ROUTED, {"region": "eu-west"}, headers)
    assert exc.value.code == -32020


def test_a_tool_without_annotations_checks_and_sends_nothing() -> None:
    param_headers.check(PLAIN, {"region": "x"}, (("mcp-param-region", "y"),))
    assert param_headers.for_upstream(PLAIN, {"region": "x"}) is None


def test_the_upstream_gets_the_arguments_headers_base64_when_not_plain_ascii() -> None:
    sent = param_headers.for_upstream(ROUTED, {"region": "Zürich", "shards": 2, "note": "n"})
    assert sent == {"Mcp-Param-Region": "=?base64?WsO8cmljaA==?=", "Mcp-Param-Shards": "2"}
