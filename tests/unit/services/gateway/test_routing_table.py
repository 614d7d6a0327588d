"""Client-safe tool names and what the routing table shows to whom."""

import dataclasses

from libs.common import wire
from libs.common.authn import Grant, Principal
from libs.common.rpc_types import ServerView, ToolUpstream, ToolView
from services.gateway.routing_table import NAME_RE, RoutingTable, public_name


def view(name: str, *tools: str, **extra) -> ServerView:
    """A registry server view with the given tool names."""
    doc = {
        "id": f"id-{name}",
        "name": name,
        "transport": "streamable-http",
        "url": "http://127.0.0.1:1/mcp",
        "enabled": True,
        "status": "healthy",
        "tools": [{"name": t, "description": t, "input_schema": {"type": "object"}} for t in tools],
        **extra,
    }
    return wire.decode(ServerView, doc)


def test_a_short_safe_name_is_server_separator_tool() -> None:
    assert public_name("github", "create_issue") == "github__create_issue"


def test_a_long_name_gets_a_stable_alias_of_at_most_64_safe_characters() -> None:
    alias = public_name(
        "a-very-long-server-name-for-testing", "an_even_longer_tool_name_that_overflows"
    )
    assert len(alias) <= 64
    assert NAME_RE.match(alias)
    assert alias == public_name(
        "a-very-long-server-name-for-testing", "an_even_longer_tool_name_that_overflows"
    )


def test_unsafe_characters_are_replaced_and_names_stay_distinct() -> None:
    one, two = public_name("files", "read.file"), public_name("files", "read_file")
    assert NAME_RE.match(one)
    assert one != two


def test_names_do_not_change_when_another_server_is_added() -> None:
    table = RoutingTable()
    table.replace([view("alpha", "x")])
    before = list(table.by_public)
    table.upsert(view("beta", "x"))
    assert before[0] in table.by_public
    assert list(table.by_public) == ["alpha__x", "beta__x"]


def test_disabled_quarantined_and_unroutable_tools_are_not_visible() -> None:
    table = RoutingTable()
    hidden_tool = view("gamma", "ok")
    hidden_tool = dataclasses.replace(
        hidden_tool, tools=[*hidden_tool.tools, ToolView("bad", routable=False)]
    )
    table.replace(
        [view("alpha", "x", enabled=False), view("beta", "y", status="quarantined"), hidden_tool]
    )
    admin = Principal(kind="user", id="1", name="a", platform_role="platform_admin")
    assert [t.public for t in table.visible_tools(admin)] == ["gamma__ok"]


def test_grants_on_single_tools_narrow_the_list() -> None:
    table = RoutingTable()
    table.replace([view("alpha", "x", "y", org="o1")])
    user = Principal(
        kind="user",
        id="1",
        name="u",
        grants=(Grant("t", "alpha", frozenset({"execute"}), ("y",), "id-alpha", "o1"),),
    )
    assert [t.public for t in table.visible_tools(user)] == ["alpha__y"]


def test_a_grant_reaches_no_server_of_another_org_even_of_the_same_name_and_id() -> None:
    table = RoutingTable()
    table.replace([view("alpha", "x", org="o2")])
    user = Principal(
        kind="user",
        id="1",
        name="u",
        grants=(Grant("t", "alpha", frozenset({"execute"}), None, "id-alpha", "o1"),),
    )
    assert table.visible_tools(user) == []
    assert not table.may_read_server(user, table.servers["alpha"])
    table.replace([view("alpha", "x", org="o2", shared_with=["o1"])])
    assert [t.public for t in table.visible_tools(user)] == ["alpha__x"]


def test_a_removed_server_takes_its_tools_along() -> None:
    table = RoutingTable()
    table.replace([view("alpha", "x"), view("beta", "y")])
    table.remove("alpha")
    assert list(table.by_public) == ["beta__y"]


def test_an_imported_tool_routes_to_its_source_under_its_servers_name() -> None:
    upstream = ToolUpstream("http://b/sse", "sse", {"X": "1"}, source_id="s1")
    server = view("shelf", "add", timeout_s=7)
    lookup = ToolView("lookup", input_schema={"type": "object"}, upstream=upstream)
    server = dataclasses.replace(server, tools=[*server.tools, lookup])
    table = RoutingTable()
    table.replace([server])
    entry = table.servers["shelf"]
    tool = table.by_public["shelf__lookup"]
    assert table.by_public["shelf__add"].source is None
    assert tool.source is entry.sources[0]
    assert (tool.source.name, tool.source.url, tool.source.transport) == (
        "shelf",
        "http://b/sse",
        "sse",
    )
    assert tool.source.headers == {"X": "1"} and tool.source.timeout_s == 7
    assert tool.source.key.startswith("shelf\0http://b/sse\0") and entry.key == "shelf"
    assert "\0" not in tool.source.label
    assert table.pool_keys == {"shelf", tool.source.key}


def test_tools_are_listed_with_their_execution_as_declared() -> None:
    declared = {
        "render": {"taskSupport": "optional"},
        "sign": {"taskSupport": "required"},
        "forbid": {"taskSupport": "forbidden"},
        "empty": {},
        "odd": {"taskSupport": "sometimes"},
        "plain": None,
    }
    server = dataclasses.replace(
        view("jobs"),
        tools=[
            ToolView(name, input_schema={"type": "object"}, execution=execution)
            for name, execution in declared.items()
        ],
    )
    table = RoutingTable()
    table.replace([server])
    tools = {t.name: t for t in table.servers["jobs"].tools}
    listed = {name: tool.as_listed(f"jobs__{name}") for name, tool in tools.items()}
    assert {name: doc.get("execution") for name, doc in listed.items()} == declared
    assert "execution" not in listed["plain"]
    assert {name: tool.task_support for name, tool in tools.items()} == {
        "render": "optional",
        "sign": "required",
        "forbid": "forbidden",
        "empty": "forbidden",
        "odd": "forbidden",
        "plain": "forbidden",
    }


def test_annotations_are_listed_in_mcp_form_whatever_form_the_registry_kept() -> None:
    from services.gateway.routing_table import wire_annotations

    sdk_parsed = {"title": None, "read_only_hint": True, "destructive_hint": None}
    assert wire_annotations(sdk_parsed) == {"readOnlyHint": True}
    assert wire_annotations({"idempotentHint": True, "title": "T"}) == {
        "idempotentHint": True,
        "title": "T",
    }
    assert wire_annotations(None) == {}


def test_names_that_collide_across_servers_never_overwrite_each_other() -> None:
    table = RoutingTable()
    table.replace([view("a__b", "c", "own"), view("a", "b__c")])
    renamed = {t.server: t for t in table.by_public.values() if t.name in ("c", "b__c")}
    assert "a__b__c" not in table.by_public
    assert renamed["a__b"].public != renamed["a"].public
    for server, tool in renamed.items():
        assert table.by_public[tool.public] is tool and tool.server == server
        listed = tool.as_listed(tool.public)
        assert listed["_meta"] == {"io.switchboard/ambiguousName": "a__b__c"}
        assert NAME_RE.match(tool.public)
    assert table.by_public["a__b__own"].ambiguous is None  # others keep their names
    assert table.collisions == {"a__b__c": ["a", "a__b"]}
    # the server endpoint (unprefixed names) and the call path see the same objects
    assert renamed["a"] in table.servers["a"].tools


def test_a_collision_that_goes_away_gives_the_name_back() -> None:
    table = RoutingTable()
    table.replace([view("a__b", "c"), view("a", "b__c")])
    table.remove("a__b")
    assert list(table.by_public) == ["a__b__c"]
    assert table.by_public["a__b__c"].server == "a"
    assert "_meta" not in table.by_public["a__b__c"].as_listed("a__b__c")
    assert table.collisions == {}
    table.upsert(view("a__b", "c"))  # and back again: both renamed, in every index
    assert "a__b__c" not in table.by_public and len(table.by_public) == 2


def test_a_tool_named_like_another_s_alias_takes_nothing_over() -> None:
    from services.gateway.routing_table import hashed_name

    alias = hashed_name("files", "read.file")  # how the unsafe name `read.file` is listed
    crafted = alias.removeprefix("files__")  # a tool whose plain name is that alias
    table = RoutingTable()
    table.replace([view("files", "read.file", crafted)])
    listed = {t.public: t.name for t in table.by_public.values()}
    assert alias not in listed  # neither holds the contested name
    assert list(listed.values()) == [crafted]  # the one whose own alias is taken is withheld
    assert table.collisions == {alias: ["files", "files"]}
