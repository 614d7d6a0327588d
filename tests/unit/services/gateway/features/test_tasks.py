"""Wrapped task ids: bound to their server, connection and creator; opaque list cursors."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from libs.common import wire
from libs.common.authn import Grant, Principal
from libs.common.rpc_types import ServerView, ToolView
from services.gateway.call_context import CallContext
from services.gateway.features.task_list import decode_cursor, encode_cursor
from services.gateway.features.tasks import Tasks
from services.gateway.jsonrpc import RpcFault
from services.gateway.routing_table import RoutingTable

EXECUTE = Grant("t", "jobs", frozenset({"execute"}), server_id="id-1", org="o1")
ADA = Principal(kind="user", id="u1", name="ada", grants=(EXECUTE,))
BOB = Principal(kind="user", id="u2", name="bob", grants=(EXECUTE,))
READER = Principal(
    kind="user",
    id="u1",
    name="ada",
    grants=(Grant("t", "jobs", frozenset({"read"}), server_id="id-1", org="o1"),),
)
SOURCE = {"url": "http://127.0.0.1:2/mcp", "transport": "streamable-http"}


def view(server_id: str = "id-1") -> ServerView:
    """A registry view of `jobs` with an own tool and one imported from a source."""
    tools = [
        {"name": "render", "input_schema": {"type": "object"}},
        {"name": "lookup", "input_schema": {"type": "object"}, "upstream": SOURCE},
    ]
    doc = {"id": server_id, "name": "jobs", "org": "o1", "url": "http://127.0.0.1:1/mcp"}
    return wire.decode(ServerView, {**doc, "tools": tools})


def tasks_of(table: RoutingTable, secret: bytes = b"shared") -> Tasks:
    """The task ids of a gateway with this table (nothing else is needed for ids)."""
    settings = SimpleNamespace(task_ttl_s=60.0, list_page_size=10)
    tasks = Tasks(SimpleNamespace(bus=None, settings=settings, pool=None, table=table, relay=None))  # type: ignore[arg-type]
    tasks.use_secret(secret)
    return tasks


def table_of(server_id: str = "id-1") -> RoutingTable:
    """A routing table holding `jobs`."""
    table = RoutingTable()
    table.replace([view(server_id)])
    return table


def test_a_wrapped_id_unwraps_for_its_creator_on_any_replica() -> None:
    table = table_of()
    server = table.servers["jobs"]
    wrapped = tasks_of(table).wrap(server, "t/1", ADA)
    route, task_id = tasks_of(table).unwrap(wrapped, CallContext(ADA))  # another replica
    assert wrapped.startswith("jobs/") and wrapped.endswith("/t/1")
    assert (route, task_id) == (server, "t/1")


@pytest.mark.parametrize(
    "case", ["other principal", "edited id", "no execute", "other secret", "re-registered"]
)
def test_a_wrapped_id_is_unknown_to_anyone_else(case: str) -> None:
    table = table_of()
    wrapped = tasks_of(table).wrap(table.servers["jobs"], "t1", ADA)
    principal, tasks = ADA, tasks_of(table)
    if case == "other principal":
        principal = BOB
    elif case == "edited id":  # Bob's own tag pointed at Ada's upstream task
        principal = BOB
        bobs = tasks.wrap(table.servers["jobs"], "t2", BOB)
        wrapped = bobs.rsplit("/", 1)[0] + "/t1"
    elif case == "no execute":
        principal = READER
    elif case == "other secret":
        tasks = tasks_of(table, b"another deployment")
    else:  # deleted, then registered again under the same name
        tasks = tasks_of(table_of("id-2"))
    with pytest.raises(RpcFault) as refused:
        tasks.unwrap(wrapped, CallContext(principal))
    assert refused.value.code == -32602


def test_a_task_of_an_imported_tool_routes_to_its_source() -> None:
    table = table_of()
    source = table.servers["jobs"].sources[0]
    wrapped = tasks_of(table).wrap(source, "s1", ADA)
    route, _ = tasks_of(table).unwrap(wrapped, CallContext(ADA))
    assert wrapped.startswith(f"jobs.{source.fingerprint[:12]}/")
    assert route is source


@pytest.mark.parametrize("bad", [7, "", "jobs", "jobs/x", "nope/x/t1", ["jobs/x/t1"]])
def test_malformed_task_ids_are_invalid_params(bad: object) -> None:
    with pytest.raises(RpcFault) as refused:
        tasks_of(table_of()).unwrap(bad, CallContext(ADA))
    assert refused.value.code == -32602


def test_a_cursor_round_trips_and_garbage_is_invalid_params() -> None:
    assert decode_cursor(encode_cursor(12.5, "k.1")) == (12.5, "k.1")
    assert decode_cursor(None) is None
    for bad in ("nope", 12, encode_cursor(1.0, "k")[:-3], "WzEsMl0="):
        with pytest.raises(RpcFault) as refused:
            decode_cursor(bad)
        assert refused.value.code == -32602


@pytest.mark.parametrize("execution", [None, {}, {"taskSupport": "forbidden"}])
async def test_a_task_augmented_call_of_a_tool_without_task_support_is_method_not_found(
    execution: dict | None,
) -> None:
    table = RoutingTable()
    table.replace([dataclasses.replace(view(), tools=[ToolView("render", execution=execution)])])
    server = table.servers["jobs"]
    forwarded = {"name": "render", "arguments": {}}
    with pytest.raises(RpcFault) as refused:  # the pool is None: nothing may be asked upstream
        await tasks_of(table).augment(server, forwarded, {"ttl": 1000}, server.tools[0], "x")
    assert refused.value.code == -32601
    assert "task" not in forwarded
