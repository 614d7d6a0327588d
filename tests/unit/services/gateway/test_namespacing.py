"""Gateway URIs, prompt names, task ids and listen filters: reversible and strict."""

from __future__ import annotations

import pytest

from libs.common.authn import Principal
from services.gateway.clients.relay import stream_key
from services.gateway.clients.subscriptions import honored
from services.gateway.features.aggregate import unwrap, wrap
from services.gateway.features.task_spec import declare, declared
from services.gateway.jsonrpc import INVALID_PARAMS, RpcFault

ALICE = Principal(kind="user", id="u-1", name="alice")


@pytest.mark.parametrize(
    "uri", ["file:///a/b.txt", "weather://stations", "https://x.test/r?q=1#f", "db://{table}/rows"]
)
def test_a_resource_uri_round_trips_through_the_gateway_form(uri: str) -> None:
    wrapped = wrap("docs", uri)
    assert wrapped == f"switchboard://docs/{uri}"
    assert unwrap(wrapped) == ("docs", uri)


@pytest.mark.parametrize("bad", [None, 3, "file:///x", "switchboard://", "switchboard://docs", ""])
def test_anything_but_a_gateway_uri_is_invalid_params(bad: object) -> None:
    with pytest.raises(RpcFault) as exc:
        unwrap(bad)
    assert exc.value.code == INVALID_PARAMS


def test_the_tasks_extension_is_declared_only_when_the_client_did() -> None:
    caps = {
        "io.modelcontextprotocol/clientCapabilities": {
            "extensions": {"io.modelcontextprotocol/tasks": {"x": 1}}
        }
    }
    assert declared({"_meta": caps}) == {"x": 1}
    assert declared({"_meta": {}}) is None and declared({}) is None
    forwarded: dict = {"name": "t", "_meta": {"progressToken": 1}}
    declare(forwarded, {"x": 1})
    assert forwarded["_meta"]["progressToken"] == 1
    assert forwarded["_meta"]["io.modelcontextprotocol/clientCapabilities"] == {
        "extensions": {"io.modelcontextprotocol/tasks": {"x": 1}}
    }


def test_listen_honours_only_known_kinds_set_to_true() -> None:
    wanted = {"toolsListChanged": True, "promptsListChanged": False, "bogus": True}
    assert honored({"notifications": wanted}) == {"toolsListChanged": True}
    with pytest.raises(RpcFault):
        honored({})


def test_stream_keys_are_nats_token_safe_and_distinct() -> None:
    a, b = stream_key("abc.def-_="), stream_key("abc.def-_+")
    assert a != b and a.isalnum() and len(a) == 32
