"""The gateway core against the real registry and real upstream MCP servers."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from services.gateway.jsonrpc import (
    FORBIDDEN,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    RESULT_TOO_LARGE,
    UPSTREAM_ERROR,
    UPSTREAM_TIMEOUT,
    UPSTREAM_UNAVAILABLE,
    RpcFault,
)
from tests.integration.gateway.conftest import ADMIN, calculator, member, register
from tests.integration.gateway.upstreams import legacy_only
from tests.integration.registry.conftest import LOCAL, run_upstream
from tests.support import free_port, serving


async def test_a_registered_servers_tools_are_listed_under_namespaced_names(
    registry, core_factory
) -> None:
    async with run_upstream(calculator()) as url:
        await register(registry, "calc", url)
        core = await core_factory()
        result = await core.call(ADMIN, "tools/list", {})
    names = [t["name"] for t in result["tools"]]
    assert names == sorted(names)
    assert {"calc__add", "calc__echo", "calc__slow"} <= set(names)
    add = next(t for t in result["tools"] if t["name"] == "calc__add")
    assert add["inputSchema"]["properties"]["a"]["type"] == "integer"


async def test_a_tool_call_is_forwarded_and_its_result_returned(registry, core_factory) -> None:
    async with run_upstream(calculator()) as url:
        await register(registry, "calc", url)
        core = await core_factory()
        result = await core.call(
            ADMIN, "tools/call", {"name": "calc__add", "arguments": {"a": 2, "b": 40}}
        )
        again = await core.call(
            ADMIN, "tools/call", {"name": "calc__echo", "arguments": {"text": "hi"}}
        )
    assert result["structuredContent"] == {"result": 42}
    assert again["content"][0]["text"] == "hi"


async def test_calls_reuse_one_initialised_upstream_session(registry, core_factory) -> None:
    async with run_upstream(calculator()) as url:
        await register(registry, "calc", url)
        core = await core_factory()
        await core.call(ADMIN, "tools/call", {"name": "calc__add", "arguments": {"a": 1, "b": 1}})
        upstream = core.pool.upstream(core.table.servers["calc"])
        first_session = upstream.session_id
        for _ in range(3):
            await core.call(
                ADMIN, "tools/call", {"name": "calc__add", "arguments": {"a": 1, "b": 1}}
            )
    assert upstream.connected
    assert upstream.session_id == first_session


async def test_every_tool_call_publishes_an_audit_record(registry, core_factory, calls) -> None:
    async with run_upstream(calculator()) as url:
        await register(registry, "calc", url)
        core = await core_factory()
        await core.call(ADMIN, "tools/call", {"name": "calc__add", "arguments": {"a": 1, "b": 2}})
    event = await calls.wait_for(lambda e: e.data["tool"] == "add")
    tool = next(t for t in core.table.servers["calc"].tools if t.name == "add")
    assert event.data["server"] == "calc"
    assert event.data["status"] == "ok"
    assert event.data["arguments"] == {"a": "[redacted]", "b": "[redacted]"}  # policy keys
    assert event.data["upstream_ms"] is not None
    assert event.data["tool_fingerprint"] == tool.fingerprint
    assert tool.fingerprint.startswith("sha256:")


async def test_an_unknown_tool_is_invalid_params_and_audited(core_factory, calls) -> None:
    core = await core_factory()
    with pytest.raises(RpcFault) as exc:
        await core.call(ADMIN, "tools/call", {"name": "nope__missing", "arguments": {}})
    assert exc.value.code == INVALID_PARAMS
    event = await calls.wait_for(lambda e: e.data["tool"] == "nope__missing")
    assert event.data["status"] == "denied"


async def test_an_unknown_method_is_method_not_found(core_factory) -> None:
    core = await core_factory()
    with pytest.raises(RpcFault) as exc:
        await core.call(ADMIN, "tools/frobnicate", {})
    assert exc.value.code == METHOD_NOT_FOUND


async def test_a_key_of_team_a_neither_lists_nor_calls_team_bs_tools(
    registry, core_factory
) -> None:
    async with run_upstream(calculator("a")) as url_a, run_upstream(calculator("b")) as url_b:
        await register(registry, "alpha", url_a)
        await register(registry, "beta", url_b)
        core = await core_factory()
        team_a = member(("team-a", "alpha", {"execute"}))
        listed = await core.call(team_a, "tools/list", {})
        ok = await core.call(
            team_a, "tools/call", {"name": "alpha__add", "arguments": {"a": 1, "b": 1}}
        )
        with pytest.raises(RpcFault) as exc:
            await core.call(
                team_a, "tools/call", {"name": "beta__add", "arguments": {"a": 1, "b": 1}}
            )
    assert {t["name"].split("__")[0] for t in listed["tools"]} == {"alpha"}
    assert ok["structuredContent"] == {"result": 2}
    assert exc.value.code == INVALID_PARAMS


async def test_a_read_only_grant_sees_the_server_but_may_not_call(registry, core_factory) -> None:
    async with run_upstream(calculator()) as url:
        await register(registry, "calc", url)
        core = await core_factory()
        reader = member(("team-a", "calc", {"read"}))
        listed = await core.call(reader, "tools/list", {})
        with pytest.raises(RpcFault) as exc:
            await core.call(
                reader, "tools/call", {"name": "calc__add", "arguments": {"a": 1, "b": 1}}
            )
    assert listed["tools"] == []
    assert exc.value.code == FORBIDDEN


async def test_a_team_endpoint_lists_only_that_teams_grants(registry, core_factory) -> None:
    async with run_upstream(calculator("a")) as url_a, run_upstream(calculator("b")) as url_b:
        await register(registry, "alpha", url_a)
        await register(registry, "beta", url_b)
        core = await core_factory()
        both = member(
            ("team-a", "alpha", {"execute"}),
            ("team-b", "beta", {"execute"}),
            teams=("team-a", "team-b"),
        )
        listed = await core.call(both, "tools/list", {}, team="team-b")
    assert {t["name"].split("__")[0] for t in listed["tools"]} == {"beta"}


async def test_a_registry_change_reaches_the_routing_table(registry, core_factory) -> None:
    core = await core_factory()
    async with run_upstream(calculator()) as url:
        await register(registry, "late", url)
        await core.wait_for_tool("late__add")
        result = await core.call(
            ADMIN, "tools/call", {"name": "late__add", "arguments": {"a": 3, "b": 4}}
        )
    assert result["structuredContent"] == {"result": 7}


async def test_tools_list_pages_with_a_cursor(registry, core_factory) -> None:
    async with run_upstream(calculator()) as url:
        await register(registry, "calc", url)
        core = await core_factory(GATEWAY_LIST_PAGE_SIZE="2")
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            params = {"cursor": cursor} if cursor else {}
            page = await core.call(ADMIN, "tools/list", params)
            seen += [t["name"] for t in page["tools"]]
            cursor = page.get("nextCursor")
            if cursor is None:
                break
        full = await core_factory()
        everything = [t["name"] for t in (await full.call(ADMIN, "tools/list", {}))["tools"]]
    assert seen == everything
    with pytest.raises(RpcFault) as exc:
        await core.call(ADMIN, "tools/list", {"cursor": "not-a-cursor"})
    assert exc.value.code == INVALID_PARAMS


async def test_a_down_upstream_is_an_upstream_error_and_others_go_on(
    registry, core_factory, calls
) -> None:
    port = free_port()
    async with run_upstream(calculator(), port=port) as dead_url:
        await register(registry, "dead", dead_url)
    async with run_upstream(calculator()) as url:
        await register(registry, "live", url)
        core = await core_factory()
        with pytest.raises(RpcFault) as exc:
            await core.call(
                ADMIN, "tools/call", {"name": "dead__add", "arguments": {"a": 1, "b": 1}}
            )
        ok = await core.call(
            ADMIN, "tools/call", {"name": "live__add", "arguments": {"a": 1, "b": 1}}
        )
    assert exc.value.code == UPSTREAM_ERROR
    assert ok["structuredContent"] == {"result": 2}
    event = await calls.wait_for(lambda e: e.data["server"] == "dead")
    assert event.data["status"] == "error"
    assert event.data["error_code"] == UPSTREAM_ERROR


async def test_a_hanging_upstream_times_out(registry, core_factory) -> None:
    async with run_upstream(calculator()) as url:
        # the registry's discovery uses the same timeout: short, but not so short that discovery
        # itself times out when the machine is busy
        await register(registry, "calc", url, timeout_s=1.5)
        core = await core_factory()
        with pytest.raises(RpcFault) as exc:
            await core.call(
                ADMIN, "tools/call", {"name": "calc__slow", "arguments": {"seconds": 5}}
            )
        ok = await core.call(
            ADMIN, "tools/call", {"name": "calc__add", "arguments": {"a": 1, "b": 1}}
        )
    assert exc.value.code == UPSTREAM_TIMEOUT
    assert ok["structuredContent"] == {"result": 2}


async def test_an_upstream_answering_garbage_is_an_upstream_error(registry, core_factory) -> None:
    async with run_upstream(calculator()) as url:
        await register(registry, "shifty", url)
        core = await core_factory()
    garbage_port = free_port()

    async def html(request):
        return Response("<html>oops</html>", media_type="text/html")

    app = Starlette(routes=[Route("/mcp", html, methods=["POST", "GET", "DELETE"])])
    async with serving(app, port=garbage_port) as base:
        view = core.table.servers["shifty"]
        view.url = base + "/mcp"
        view.fingerprint = "garbage"
        with pytest.raises(RpcFault) as exc:
            await core.call(
                ADMIN, "tools/call", {"name": "shifty__add", "arguments": {"a": 1, "b": 1}}
            )
    assert exc.value.code == UPSTREAM_ERROR


async def test_repeated_failures_open_the_circuit(registry, core_factory) -> None:
    port = free_port()
    async with run_upstream(calculator(), port=port) as url:
        await register(registry, "flaky", url)
    core = await core_factory(GATEWAY_BREAKER_FAILURES="2", GATEWAY_BREAKER_RESET_S="60")
    codes = []
    for _ in range(3):
        with pytest.raises(RpcFault) as exc:
            await core.call(
                ADMIN, "tools/call", {"name": "flaky__add", "arguments": {"a": 1, "b": 1}}
            )
        codes.append(exc.value.code)
    listed = await core.call(ADMIN, "tools/list", {})
    assert codes == [UPSTREAM_ERROR, UPSTREAM_ERROR, UPSTREAM_UNAVAILABLE]
    assert listed["_meta"]["io.switchboard/unavailableServers"] == ["flaky"]
    assert not any(t["name"].startswith("flaky__") for t in listed["tools"])


async def test_a_result_over_the_size_limit_is_refused(registry, core_factory) -> None:
    async with run_upstream(calculator()) as url:
        await register(registry, "calc", url)
        core = await core_factory(GATEWAY_MAX_RESULT_BYTES="1000")
        small = await core.call(ADMIN, "tools/call", {"name": "calc__big", "arguments": {"n": 10}})
        with pytest.raises(RpcFault) as exc:
            await core.call(ADMIN, "tools/call", {"name": "calc__big", "arguments": {"n": 5000}})
    assert small["content"][0]["text"] == "x" * 10
    assert exc.value.code == RESULT_TOO_LARGE


async def test_a_server_endpoint_forwards_resources_and_prompts(registry, core_factory) -> None:
    from tests.integration.registry.conftest import make_upstream

    async with run_upstream(make_upstream()) as url:
        await register(registry, "weather", url)
        core = await core_factory()
        server = core.table.servers["weather"]
        tools = await core.call(ADMIN, "tools/list", {}, server=server)
        resources = await core.call(ADMIN, "resources/list", {}, server=server)
        prompt = await core.call(
            ADMIN,
            "prompts/get",
            {"name": "ask_weather", "arguments": {"city": "Oslo"}},
            server=server,
        )
        called = await core.call(
            ADMIN,
            "tools/call",
            {"name": "temperature", "arguments": {"city": "Oslo"}},
            server=server,
        )
    assert {t["name"] for t in tools["tools"]} == {"temperature", "forecast"}
    assert resources["resources"][0]["uri"] == "weather://stations"
    assert "Oslo" in prompt["messages"][0]["content"]["text"]
    assert called["content"][0]["text"] == "21C in Oslo"


async def test_concurrent_calls_share_the_session(registry, core_factory) -> None:
    async with run_upstream(calculator()) as url:
        await register(registry, "calc", url)
        core = await core_factory()
        results = await asyncio.gather(
            *(
                core.call(ADMIN, "tools/call", {"name": "calc__add", "arguments": {"a": i, "b": 1}})
                for i in range(20)
            )
        )
    assert [r["structuredContent"]["result"] for r in results] == [i + 1 for i in range(20)]


async def test_an_expired_upstream_session_is_replaced_and_counted_once(
    registry, core_factory
) -> None:
    from prometheus_client import REGISTRY

    def gauge() -> float | None:
        return REGISTRY.get_sample_value(
            "switchboard_gateway_upstream_sessions", {"server": "phoenix"}
        )

    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    async with serving(
        legacy_only(calculator().streamable_http_app(transport_security=LOCAL)), port
    ):
        await register(registry, "phoenix", url)
        core = await core_factory()
        before = gauge() or 0.0
        await core.call(
            ADMIN, "tools/call", {"name": "phoenix__add", "arguments": {"a": 1, "b": 1}}
        )
        first = core.pool.upstream(core.table.servers["phoenix"]).session_id
    # a new server on the same port: the old session is unknown there (404)
    async with serving(
        legacy_only(calculator().streamable_http_app(transport_security=LOCAL)), port
    ):
        ok = await core.call(
            ADMIN, "tools/call", {"name": "phoenix__add", "arguments": {"a": 2, "b": 2}}
        )
        upstream = core.pool.upstream(core.table.servers["phoenix"])
    assert ok["structuredContent"] == {"result": 4}
    assert upstream.session_id != first
    assert gauge() == before + 1  # the replaced session no longer counts


async def test_a_cookie_set_by_an_upstream_never_rides_on_another_call(
    registry, core_factory
) -> None:
    seen: list[bytes | None] = []
    inner = calculator().streamable_http_app(transport_security=LOCAL)

    async def cookie_setting(scope, receive, send):  # noqa: ANN001
        if scope["type"] == "http":
            seen.append(dict(scope["headers"]).get(b"cookie"))

            async def with_cookie(message):  # noqa: ANN001
                if message["type"] == "http.response.start":
                    headers = [*message.get("headers", []), (b"set-cookie", b"sid=alice-only")]
                    message = {**message, "headers": headers}
                await send(message)

            await inner(scope, receive, with_cookie)
            return
        await inner(scope, receive, send)

    async with serving(cookie_setting) as base:
        # a host name: aiohttp's default jar ignores cookies of bare IP addresses
        await register(registry, "cookies", f"{base.replace('127.0.0.1', 'localhost')}/mcp")
        core = await core_factory()
        seen.clear()
        other = member(("team-a", "cookies", {"read", "execute"}))
        for who in (ADMIN, other, ADMIN):
            await core.call(
                who, "tools/call", {"name": "cookies__add", "arguments": {"a": 1, "b": 1}}
            )
    assert seen and all(cookie is None for cookie in seen)


@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted"])
async def test_annotations_reach_clients_and_read_only_calls_are_retried_on_trusted_servers_only(
    registry, core_factory, trusted
) -> None:
    from mcp_types import ToolAnnotations

    server = calculator("hints")

    @server.tool(description="Look a word up.", annotations=ToolAnnotations(read_only_hint=True))
    def lookup(word: str) -> str:
        return word.upper()

    inner = server.streamable_http_app(transport_security=LOCAL)
    calls: list[str] = []

    async def first_call_fails(scope, receive, send):  # noqa: ANN001
        """The first tools/call of each tool is a 502 page: a transport failure."""
        if scope["type"] == "http" and scope["method"] == "POST":
            body, more = b"", True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            doc = orjson.loads(body) if body else {}
            if doc.get("method") == "tools/call":
                tool = doc["params"]["name"]
                calls.append(tool)
                if calls.count(tool) == 1:
                    await send({"type": "http.response.start", "status": 502, "headers": []})
                    await send({"type": "http.response.body", "body": b"bad gateway"})
                    return
            replay = [{"type": "http.request", "body": body, "more_body": False}]

            async def again():  # noqa: ANN202
                return replay.pop() if replay else await receive()

            await inner(scope, again, send)
            return
        await inner(scope, receive, send)

    async with serving(first_call_fails) as base:
        await register(registry, "hints", f"{base}/mcp", trusted=trusted)
        core = await core_factory()
        listed = await core.call(ADMIN, "tools/list", {})
        try:
            looked = await core.call(
                ADMIN, "tools/call", {"name": "hints__lookup", "arguments": {"word": "hi"}}
            )
        except RpcFault as fault:
            looked = {"code": fault.code}
        with pytest.raises(RpcFault) as plain:  # not read-only: not retried
            await core.call(
                ADMIN, "tools/call", {"name": "hints__add", "arguments": {"a": 1, "b": 1}}
            )
    lookup_tool = next(t for t in listed["tools"] if t["name"] == "hints__lookup")
    assert lookup_tool["annotations"] == {"readOnlyHint": True}  # listed as declared, always
    if trusted:
        assert looked["content"][0]["text"] == "HI"
        assert calls == ["lookup", "lookup", "add"]
    else:  # a hint of a server nobody vouched for does not make a call repeatable
        assert looked == {"code": UPSTREAM_ERROR}
        assert calls == ["lookup", "add"]
    assert plain.value.code == UPSTREAM_ERROR


async def test_the_heap_is_settled_after_the_table_loads_and_after_each_change(
    registry, core_factory
) -> None:
    """Full GC passes skip the routing table: it is frozen once each burst of changes is over."""
    from prometheus_client import REGISTRY

    def settles() -> float:
        return REGISTRY.get_sample_value("switchboard_gateway_heap_settle_seconds_count") or 0.0

    before = settles()
    core = await core_factory(GATEWAY_GC_FREEZE=True)
    async with asyncio.timeout(5):
        while settles() == before:
            await asyncio.sleep(0.05)
    assert REGISTRY.get_sample_value("switchboard_gateway_heap_frozen_objects") > 0
    loaded = settles()
    async with run_upstream(calculator()) as url:
        await register(registry, "heapcalc", url)
        await core.wait_for_tool("heapcalc__add")
        async with asyncio.timeout(5):
            while settles() == loaded:
                await asyncio.sleep(0.05)


async def test_tools_whose_names_collide_across_servers_are_both_listed_and_routed_apart(
    registry, core_factory
) -> None:
    from mcp.server.mcpserver import MCPServer

    outer, inner = MCPServer("outer"), MCPServer("inner")

    @outer.tool(name="c", description="Answer from the a__b server.")
    def c_tool() -> str:
        return "from a__b"

    @inner.tool(name="b__c", description="Answer from the a server.")
    def b_c_tool() -> str:
        return "from a"

    async with run_upstream(outer) as outer_url, run_upstream(inner) as inner_url:
        await register(registry, "a__b", outer_url)
        await register(registry, "a", inner_url)
        core = await core_factory()
        listed = await core.call(ADMIN, "tools/list", {})
        ours = [t for t in listed["tools"] if t["name"].startswith("a__b__c")]
        answers = [
            (await core.call(ADMIN, "tools/call", {"name": t["name"], "arguments": {}}))["content"][
                0
            ]["text"]
            for t in ours
        ]
        with pytest.raises(RpcFault) as plain:
            await core.call(ADMIN, "tools/call", {"name": "a__b__c", "arguments": {}})
    assert len(ours) == 2 and "a__b__c" not in [t["name"] for t in ours]
    assert sorted(t["description"] for t in ours) == [
        "Answer from the a server.", "Answer from the a__b server."]  # fmt: skip
    assert {t["_meta"]["io.switchboard/ambiguousName"] for t in ours} == {"a__b__c"}
    assert sorted(answers) == ["from a", "from a__b"]
    assert plain.value.code == -32602
