"""The gateway's side of tenancy (docs/TENANCY.md).

Grants of another org reach nothing, grants narrowed to tools give only those tools, and calls
are filed under the server's org."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from libs.common.authn import Grant
from services.gateway.jsonrpc import FORBIDDEN, INVALID_PARAMS, RpcFault
from tests.integration.gateway.conftest import (
    SERVER_IDS,
    TEST_ORG,
    bearer,
    member,
    modern_body,
    modern_headers,
    register,
)
from tests.integration.gateway.upstreams import rich
from tests.integration.registry.conftest import run_upstream

READS = (
    ("resources/list", {}),
    ("resources/templates/list", {}),
    ("prompts/list", {}),
)


def stranger(server: str) -> object:
    """A member of another org whose grant names `server`'s id: what a cross-org grant was."""
    grant = Grant("team-x", server, frozenset({"read", "execute", "write"}), None)
    grant = replace(grant, server_id=SERVER_IDS[server], org="org-elsewhere")
    return replace(member(), orgs={"org-elsewhere": "admin"}, org="org-elsewhere", grants=(grant,))


async def test_a_grant_held_by_another_org_reaches_none_of_the_servers_tools_or_contents(
    registry, core_factory
) -> None:
    async with run_upstream(rich("vault")) as url:
        await register(registry, "vault", url)
        core = await core_factory()
        await core.wait_for_tool("vault__add")
        outsider = stranger("vault")
        listed = await core.call(outsider, "tools/list", {})
        with pytest.raises(RpcFault) as called:
            await core.call(outsider, "tools/call", {"name": "vault__add", "arguments": {}})
        with pytest.raises(RpcFault) as read:
            await core.call(
                outsider, "resources/read", {"uri": "switchboard://vault/vault://readme"}
            )
        lists = [await core.call(outsider, method, params) for method, params in READS]
    assert listed["tools"] == []
    assert called.value.code == read.value.code == INVALID_PARAMS  # unknown, not forbidden
    assert lists[0]["resources"] == [] and lists[2]["prompts"] == []


@pytest.mark.parametrize("modern", [False, True])
async def test_a_grant_narrowed_to_tools_gives_no_resources_prompts_or_completions(
    registry, core_factory, modern
) -> None:
    async with run_upstream(rich("shelf")) as url:
        await register(registry, "shelf", url)
        core = await core_factory()
        await core.wait_for_tool("shelf__add")
        narrow = member(("team-a", "shelf", {"read", "execute"}))
        narrow = replace(narrow, grants=(replace(narrow.grants[0], tools=("add",)),))
        server = core.table.servers["shelf"]
        views = ({}, {"team": "team-a"}, {"server": server, "endpoint": "/mcp/servers/{path}"})
        for view in views:
            tools = await core.call(narrow, "tools/list", {}, modern=modern, **view)
            assert [t["name"].rsplit("__", 1)[-1] for t in tools["tools"]] == ["add"], view
            for method, params in READS:
                if "server" in view:
                    with pytest.raises(RpcFault) as refused:
                        await core.call(narrow, method, params, modern=modern, **view)
                    assert refused.value.code == FORBIDDEN, (view, method)
                    continue
                listed = await core.call(narrow, method, params, modern=modern, **view)
                assert not any(listed[k] for k in listed if k in ("resources", "prompts")), view
            prompt_ref = {
                "type": "ref/prompt",
                "name": "greet" if "server" in view else "shelf__greet",
            }
            complete = {"ref": prompt_ref, "argument": {"name": "who", "value": "al"}}
            with pytest.raises(RpcFault) as completed:
                await core.call(narrow, "completion/complete", complete, modern=modern, **view)
            assert completed.value.code in (INVALID_PARAMS, FORBIDDEN), view
        whole = member(("team-a", "shelf", {"read", "execute"}))
        everything = await core.call(whole, "prompts/list", {}, modern=modern)
    assert [p["name"] for p in everything["prompts"]] == ["shelf__mood", "shelf__greet"]


async def test_another_orgs_server_endpoint_and_team_endpoint_are_not_there(
    registry, stack
) -> None:
    auth = stack.auth
    async with run_upstream(rich("private")) as url, httpx.AsyncClient(timeout=10) as http:
        await register(registry, "private", url)
        await stack.wait_for_tool(http, "private__add")
        org = await auth.create_org()
        team = await auth.create_team(org["slug"])
        user = await auth.create_user()
        await auth.add_member(team["name"], user)
        key = await auth.api_key(user.token)
        for path in ("/mcp/servers/private", f"/mcp/{team['name']}-not-mine", "/mcp/servers/nope"):
            resp = await http.post(
                f"{stack.url}{path}",
                json=modern_body("tools/list", {}),
                headers={**modern_headers("tools/list"), **bearer(key)},
            )
            assert resp.status_code == 404, (path, resp.text)
            assert resp.json()["error"]["code"] == -32004


async def test_a_call_is_filed_under_its_servers_org_not_the_callers(
    registry, core_factory, calls
) -> None:
    async with run_upstream(rich("ledger")) as url:
        await register(registry, "ledger", url)
        core = await core_factory()
        await core.wait_for_tool("ledger__add")
        caller = replace(member(("team-a", "ledger", {"execute"})), org="org-of-the-caller")
        await core.call(
            caller, "tools/call", {"name": "ledger__add", "arguments": {"a": 1, "b": 2}}
        )
        event = await calls.wait_for(lambda e: e.data["server"] == "ledger")
    assert event.org == event.data["org"] == TEST_ORG
    assert event.data["caller_org"] == "org-of-the-caller"
