"""Org policies enforced by the gateway: a denied catalog version is neither listed nor called.

Both protocol generations go through the same checks; a policy change reaches every replica
(two cores following the registry's events) within a second."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from libs.common.authn import Grant, Principal
from libs.devstack.harness import until
from services.gateway.jsonrpc import FORBIDDEN, RpcFault
from services.registry import policies, servers
from services.registry.context import Registry
from services.registry.schemas import PolicyCreate, PolicyFields
from tests.integration.gateway.conftest import SERVER_IDS, TEST_ORG, calculator, member, register
from tests.integration.registry.conftest import run_upstream
from tests.support.catalog import empty_catalog, insert_version

OTHER_ORG = "org-gateway-policy-free"
DENY_LOW = PolicyCreate(
    name="Require Minimum Score", action="DENY", target_type="SCORE", target_value="min:70"
)
PROPAGATION_S = 1.0


@pytest.fixture(autouse=True)
async def no_catalog(registry: Registry) -> AsyncIterator[None]:
    """Every test starts without MCPs and policies."""
    await empty_catalog(registry.pool)
    yield


def user_of(org: str, server: str) -> Principal:
    """A member of `org` whose team may read and execute the (lent) server."""
    grant = Grant("team-a", server, frozenset({"read", "execute"}), None, SERVER_IDS[server], org)
    return replace(
        member(), orgs={org: "member"}, org=org, team_orgs=((org, "team-a"),), grants=(grant,)
    )


async def lent_server(registry: Registry, url: str, version_id: str) -> None:
    """A platform server `scored`, run from the catalog version, lent to both orgs."""
    await register(registry, "scored", url, org=None, catalog_version=version_id)
    async with registry.pool.acquire() as conn, conn.transaction():
        row = await servers.get_or_404(conn, "scored")
        for org in (TEST_ORG, OTHER_ORG):
            row = await servers.share(registry, conn, row, org, "test")


async def set_policy(registry: Registry, **change: object) -> str:
    """Create DENY_LOW in TEST_ORG, or change it; returns its id."""
    async with registry.pool.acquire() as conn, conn.transaction():
        existing = await conn.fetchrow("SELECT * FROM registry.policies WHERE org = $1", TEST_ORG)
        if existing is None:
            row = await policies.create(registry, conn, TEST_ORG, DENY_LOW, "test")
        else:
            body = PolicyFields(**change)
            row = await policies.update(registry, conn, existing, body, "test", whole=False)
    return str(row["id"])


def tool_names(listing: dict) -> list[str]:
    """The names of a tools/list result."""
    return [t["name"] for t in listing["tools"]]


@pytest.mark.parametrize("modern", [False, True])
async def test_a_denied_version_is_unlisted_and_refused_for_its_org_only(
    registry: Registry, core_factory, modern: bool
) -> None:
    version = await insert_version(registry.pool, "mcp-calc", score=35)
    async with run_upstream(calculator()) as url:
        await lent_server(registry, url, str(version.version_id))
        core = await core_factory()
        await core.wait_for_tool("scored__add")
        denied, free = user_of(TEST_ORG, "scored"), user_of(OTHER_ORG, "scored")
        assert "scored__add" in tool_names(await core.call(denied, "tools/list", {}, modern=modern))
        policy_id = await set_policy(registry)
        await until(
            lambda: core.table.policies.orgs.get(TEST_ORG) is not None,
            timeout=5, interval=0.01, what="the policy at the gateway",
        )  # fmt: skip
        listed = await core.call(denied, "tools/list", {}, modern=modern)
        with pytest.raises(RpcFault) as refused:
            await core.call(
                denied, "tools/call", {"name": "scored__add", "arguments": {"a": 1, "b": 2}},
                modern=modern,
            )  # fmt: skip
        other = await core.call(free, "tools/list", {}, modern=modern)
        called = await core.call(
            free, "tools/call", {"name": "scored__add", "arguments": {"a": 1, "b": 2}},
            modern=modern,
        )  # fmt: skip
        server = core.table.servers["scored"]
        endpoint = await core.call(denied, "tools/list", {}, modern=modern, server=server)
        prompts = await core.call(denied, "prompts/list", {}, modern=modern)
    assert not [n for n in tool_names(listed) if n.startswith("scored__")]
    assert tool_names(endpoint) == []
    assert prompts["prompts"] == []
    assert refused.value.code == FORBIDDEN
    assert refused.value.data["policy"] == {"id": policy_id, "name": DENY_LOW.name}
    assert refused.value.data["result"] == "DENIED"
    assert "scored__add" in tool_names(other)
    assert called["content"][0]["text"] == "3"


async def test_a_policy_change_reaches_every_replica_within_a_second(
    registry: Registry, core_factory
) -> None:
    version = await insert_version(registry.pool, "mcp-calc", score=35)
    async with run_upstream(calculator()) as url:
        await lent_server(registry, url, str(version.version_id))
        replicas = [await core_factory(), await core_factory()]
        for core in replicas:
            await core.wait_for_tool("scored__add")
        user = user_of(TEST_ORG, "scored")

        async def seen_by_all(visible: bool) -> float:
            """Seconds until every replica lists (or hides) the tool for `user`."""
            started = asyncio.get_running_loop().time()
            for core in replicas:
                await until(
                    lambda core=core: any(t.public == "scored__add"
                                          for t in core.table.visible_tools(user)) == visible,
                    timeout=5, interval=0.005, what="the policy applied",
                )  # fmt: skip
            return asyncio.get_running_loop().time() - started

        await set_policy(registry)
        denied_after = await seen_by_all(False)
        await set_policy(registry, enabled=False)
        back_after = await seen_by_all(True)
        await set_policy(registry, enabled=True)
        again_after = await seen_by_all(False)
    assert denied_after < PROPAGATION_S
    assert back_after < PROPAGATION_S
    assert again_after < PROPAGATION_S


async def test_an_approval_lets_a_held_version_through(registry: Registry, core_factory) -> None:
    version = await insert_version(registry.pool, "mcp-calc", score=35)
    async with run_upstream(calculator()) as url:
        await lent_server(registry, url, str(version.version_id))
        core = await core_factory()
        await core.wait_for_tool("scored__add")
        user = user_of(TEST_ORG, "scored")
        hold = DENY_LOW.model_copy(update={"action": "REQUIRE_APPROVAL"})
        async with registry.pool.acquire() as conn, conn.transaction():
            await policies.create(registry, conn, TEST_ORG, hold, "test")

        def listed() -> bool:
            return any(t.public == "scored__add" for t in core.table.visible_tools(user))

        await until(lambda: not listed(), timeout=5, interval=0.01, what="held back")
        with pytest.raises(RpcFault) as refused:
            await core.call(user, "tools/call", {"name": "scored__add", "arguments": {}})
        approval = policies.ApprovalIn(mcp="mcp-calc", version=version.visible_version)
        async with registry.pool.acquire() as conn, conn.transaction():
            await policies.approve(registry, conn, TEST_ORG, approval, "test")
        await until(listed, timeout=5, interval=0.01, what="approved")
    assert refused.value.data["result"] == "REQUIRES_APPROVAL"
