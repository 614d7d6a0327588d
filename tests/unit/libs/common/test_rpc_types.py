"""RPC requests and replies round-trip through JSON as the dataclasses both ends share."""

from __future__ import annotations

import orjson
import pytest

from libs.common import rpc_types as rt
from libs.common.errors import UpstreamError, ValidationError
from libs.common.principal import Grant, Principal


def over_the_wire(doc: object) -> object:
    """What the other end parses: the JSON bytes Bus.request and Bus.serve send."""
    return orjson.loads(orjson.dumps(doc))


def test_a_request_leaves_out_its_unset_optional_fields_as_the_dicts_did() -> None:
    method = rt.AUTH_INTROSPECT
    assert method.encode_request(rt.IntrospectRequest(token_hash="h")) == {"token_hash": "h"}
    assert rt.REGISTRY_SNAPSHOT.encode_request(rt.SnapshotRequest()) == {"offset": 0, "limit": 50}
    assert rt.AUTH_JWKS.encode_request(rt.JwksRequest()) == {}


@pytest.mark.parametrize(
    ("method", "asked"),
    [
        (rt.AUTH_INTROSPECT, rt.IntrospectRequest(user_id="u", session_id="s")),
        (rt.AUTH_ORG, rt.OrgRequest("acme")),
        (rt.AUTH_SET_PLAN, rt.SetPlanRequest("acme", "pro", "webhook:stripe")),
        (rt.REGISTRY_SNAPSHOT, rt.SnapshotRequest(["a", "b"], 50, 10)),
        (rt.REGISTRY_HOSTED, rt.HostedRequest("echo")),
        (rt.REGISTRY_RESOLVE, rt.ResolveRequest("o1", ["a", "id-2"])),
        (rt.SANDBOX_CALL, rt.SandboxCall("echo", {"jsonrpc": "2.0", "id": 1}, 5.0, {"id": "u"})),
        (rt.SANDBOX_DISCOVER, rt.SandboxDiscover("echo")),
    ],
)
def test_every_request_round_trips(method: rt.Rpc, asked: object) -> None:
    assert method.decode_request(over_the_wire(method.encode_request(asked))) == asked


def snapshot() -> rt.Snapshot:
    """A snapshot page with one server and an imported tool."""
    upstream = rt.ToolUpstream("https://ext.example/mcp", headers={"A": "b"}, source_id="s1")
    tools = [
        rt.ToolView("add", input_schema={"type": "object"}, annotations={"read_only_hint": True}),
        rt.ToolView("far", execution={}, routable=False, upstream=upstream),
    ]
    server = rt.ServerView(
        name="calc", id="id-1", path="calc", org="o1", shared_with=["o2"],
        url="https://calc.example/mcp", headers={"Authorization": "x"}, timeout_s=30.0,
        tools=tools, resources=[{"uri": "r://1"}], version=7,
    )  # fmt: skip
    return rt.Snapshot(servers=[server], version=9, settings={"k": 1}, next_offset=None)


@pytest.mark.parametrize(
    ("method", "reply"),
    [
        (rt.AUTH_JWKS, rt.Jwks([{"kid": "k1", "kty": "OKP"}])),
        (rt.AUTH_ORG, rt.OrgReply("id-1", "acme", "active")),
        (rt.AUTH_SET_PLAN, rt.OrgReply("id-1", "acme", "active", "team")),
        (rt.REGISTRY_SNAPSHOT, snapshot()),
        (rt.REGISTRY_HOSTED, rt.HostedReply(rt.HostedServer("id", "echo", "stdio", command="x"))),
        (rt.REGISTRY_RESOLVE, rt.ResolveReply([rt.ResolvedServer("a", "id", "a", "o1", False)])),
        (rt.SANDBOX_CALL, rt.SandboxCallReply({"jsonrpc": "2.0", "id": 1, "result": {}})),
        (rt.SANDBOX_DISCOVER, rt.Listing(tools=[{"name": "t"}])),
    ],
)
def test_every_reply_round_trips(method: rt.Rpc, reply: object) -> None:
    assert method.decode_reply(over_the_wire(reply)) == reply


def test_the_introspect_reply_is_the_principal_in_its_own_json_form() -> None:
    grant = Grant("t", "calc", frozenset({"execute"}), ("add",), "id-1", "o1")
    principal = Principal("user", "u1", "ann", user_id="u1", orgs={"o1": "admin"}, grants=(grant,))
    assert rt.AUTH_INTROSPECT.decode_reply(over_the_wire(principal.to_dict())) == principal


def test_a_reply_from_an_older_or_newer_server_decodes_with_defaults_and_without_extras() -> None:
    doc = {"servers": [{"name": "calc", "id": "i", "tools": [{"name": "t", "new": 1}]}], "x": 1}
    page = rt.REGISTRY_SNAPSHOT.decode_reply(doc)
    assert page.servers[0].tools[0] == rt.ToolView("t")
    assert page.servers[0].transport == "streamable-http" and page.next_offset is None


def test_a_request_outside_the_contract_is_a_validation_error_naming_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        rt.REGISTRY_SNAPSHOT.decode_request({"names": ["a", 3]})
    assert caught.value.status == 400 and caught.value.details == {"field": "names"}
    with pytest.raises(ValidationError) as caught:
        rt.REGISTRY_SNAPSHOT.decode_request({"limit": True})
    assert caught.value.details == {"field": "limit"}
    with pytest.raises(ValidationError) as caught:
        rt.REGISTRY_HOSTED.decode_request({})
    assert caught.value.details == {"field": "server"}


def test_a_reply_outside_the_contract_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError) as caught:
        rt.AUTH_ORG.decode_reply({"id": "i", "slug": "s"})
    assert caught.value.status == 502
