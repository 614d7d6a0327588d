"""2025-11-25 tasks through the gateway, between session clients and a session upstream.

Task-augmented `tools/call`, tasks/* and status notifications; the upstream declares the `tasks`
capability."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import (
    CallToolResult,
    CancelTaskRequest,
    CancelTaskRequestParams,
    CancelTaskResult,
    ElicitResult,
    GetTaskPayloadRequest,
    GetTaskPayloadRequestParams,
    GetTaskRequest,
    GetTaskRequestParams,
    GetTaskResult,
    ListTasksRequest,
    ListTasksResult,
)

from libs.common.authn import Principal
from services.registry import tools
from tests.integration.gateway.conftest import ADMIN, bearer, member, register
from tests.integration.gateway.task_upstreams import SessionTaskServer
from tests.integration.gateway.upstreams import legacy_only, rich
from tests.integration.registry.conftest import LOCAL, run_upstream
from tests.support import serving
from tests.support.sse import messages, stream_messages

RELATED = "io.modelcontextprotocol/related-task"


def rpc(rid: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A JSON-RPC request."""
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


class Session:
    """A legacy Streamable HTTP session spoken by hand (for what the SDK client cannot send)."""

    def __init__(self, http: httpx.AsyncClient, url: str, token: str) -> None:
        self.http, self.url, self.token = http, url, token
        self.id = ""
        self.version = ""
        self.capabilities: dict[str, Any] = {}

    async def open(self, version: str = "2025-11-25") -> Session:
        """Open a session: initialize, then notifications/initialized."""
        init = {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "by-hand", "version": "1"},
        }
        resp = await self.http.post(self.url, json=rpc(1, "initialize", init), headers=self._auth())
        self.id, self.version = resp.headers["mcp-session-id"], version
        self.capabilities = resp.json()["result"]["capabilities"]
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await self.http.post(self.url, json=note, headers=self.headers())
        return self

    def _auth(self) -> dict[str, str]:
        return {**bearer(self.token), "Accept": "application/json, text/event-stream"}

    def headers(self) -> dict[str, str]:
        """The session's request headers."""
        return {**self._auth(), "Mcp-Session-Id": self.id, "MCP-Protocol-Version": self.version}

    async def request(self, method: str, params: dict[str, Any], url: str | None = None) -> Any:
        """One request; the JSON-RPC response."""
        resp = await self.http.post(
            url or self.url, json=rpc(2, method, params), headers=self.headers()
        )
        if not resp.headers["content-type"].startswith("text/event-stream"):
            return resp.json()
        # notifications may come first
        return next(e for e in messages(resp.content) if e.get("id") == 2)

    @asynccontextmanager
    async def stream(self, url: str | None = None) -> AsyncIterator[asyncio.Queue[dict]]:
        """The session's GET stream, its messages queued."""
        queue: asyncio.Queue[dict] = asyncio.Queue()
        opened = asyncio.Event()

        async def read() -> None:
            async with self.http.stream("GET", url or self.url, headers=self.headers()) as resp:
                opened.set()
                async for message in stream_messages(resp):
                    queue.put_nowait(message)

        reader = asyncio.create_task(read())
        async with asyncio.timeout(5):
            await opened.wait()
        try:
            yield queue
        finally:
            reader.cancel()


async def next_status(queue: asyncio.Queue[dict]) -> dict[str, Any]:
    """The next notifications/tasks/status on a stream."""
    async with asyncio.timeout(5):
        while (msg := await queue.get()).get("method") != "notifications/tasks/status":
            pass
    return msg["params"]


def sdk_client(stack: Any, **callbacks: Any) -> tuple[httpx2.AsyncClient, Client]:
    """The official SDK client in a 2025-11-25 session over the gateway (the admin)."""
    http = httpx2.AsyncClient(headers=bearer(stack.admin), timeout=10)
    connection = streamable_http_client(f"{stack.url}/mcp", http_client=http)
    return http, Client(connection, mode="legacy", **callbacks)


def call(server: str) -> dict[str, Any]:
    """A task-augmented tools/call of `render` on `server`."""
    return {"name": f"{server}__render", "arguments": {}, "task": {"ttl": 30000}}


async def test_a_session_client_runs_a_tool_as_a_task(registry, stack, calls) -> None:
    jobs = SessionTaskServer()
    async with serving(jobs.app()) as base, httpx.AsyncClient(timeout=10) as raw:
        await register(registry, "sjobs-run", f"{base}/mcp")
        await stack.wait_for_tool(raw, "sjobs-run__render")
        me = await Session(raw, f"{stack.url}/mcp", stack.admin).open()
        async with me.stream() as events:
            created = await me.request("tools/call", call("sjobs-run"))
            task_id = created["result"]["task"]["taskId"]
            upstream_id = task_id.rsplit("/", 1)[1]
            http, client = sdk_client(stack)
            async with http, client:
                got = await client.session.send_request(
                    GetTaskRequest(params=GetTaskRequestParams(task_id=task_id)), GetTaskResult
                )
                listed = await client.session.send_request(ListTasksRequest(), ListTasksResult)
                jobs.finish(upstream_id, "rendered as a task")
                status = await next_status(events)
                outcome = await client.session.send_request(
                    GetTaskPayloadRequest(params=GetTaskPayloadRequestParams(task_id=task_id)),
                    CallToolResult,
                )
        record = await calls.wait_for(lambda e: e.data["server"] == "sjobs-run")
    assert me.capabilities["tasks"] == {
        "list": {},
        "cancel": {},
        "requests": {"tools": {"call": {}}},
    }
    assert created["result"]["task"]["status"] == "working"
    assert task_id.startswith("sjobs-run/")
    assert jobs.augmented == [{"ttl": 30000}]
    assert (got.task_id, got.status, got.ttl) == (task_id, "working", 30000)
    assert task_id in [t.task_id for t in listed.tasks]
    assert (status["taskId"], status["status"]) == (task_id, "completed")
    assert outcome.content[0].text == "rendered as a task"
    assert outcome.meta[RELATED]["taskId"] == task_id
    assert (record.data["tool"], record.data["status"]) == ("render", "ok")


async def test_tools_are_listed_with_their_task_support_and_held_to_it(registry, stack) -> None:
    jobs = SessionTaskServer()
    progressive = f"{stack.url}/mcp?exposure=progressive"
    async with serving(jobs.app()) as base, httpx.AsyncClient(timeout=10) as raw:
        await register(registry, "sjobs-list", f"{base}/mcp")
        await stack.wait_for_tool(raw, "sjobs-list__note")
        http, client = sdk_client(stack)
        async with http, client:
            listed = await client.list_tools()
        me = await Session(raw, f"{stack.url}/mcp", stack.admin).open()
        note = {"name": "sjobs-list__note", "arguments": {}}
        refused = await me.request("tools/call", {**note, "task": {}})
        inline = await me.request("tools/call", note)
        describe = {"name": "describe_tool", "arguments": {"name": "sjobs-list__sign"}}
        described = await me.request("tools/call", describe, progressive)
        meta = {"name": "call_tool", "arguments": {"name": "sjobs-list__render"}, "task": {}}
        meta_task = await me.request("tools/call", meta, progressive)
    async with registry.pool.acquire() as conn:
        shown = await tools.tool_view(conn, "sjobs-list", "sign")  # GET …/tools/sign
    support = {
        t.name: t.execution.task_support if t.execution else None
        for t in listed.tools
        if t.name.startswith("sjobs-list__")
    }
    assert support == {
        "sjobs-list__render": "optional",
        "sjobs-list__sign": "required",
        "sjobs-list__note": None,
    }
    assert shown["execution"] == {"taskSupport": "required"}
    # a tool without task support: the spec's -32601, and nothing reaches the upstream
    assert refused["error"]["code"] == -32601
    assert inline["result"]["content"][0]["text"] == "rendered inline"
    assert jobs.augmented == []
    tool = described["result"]["structuredContent"]["tool"]
    assert tool["execution"] == {"taskSupport": "required"}
    assert meta_task["error"]["code"] == -32601  # the meta-tools declare no task support


async def test_the_result_waits_while_the_upstream_asks_the_client(registry, stack) -> None:
    jobs = SessionTaskServer()
    asked: list[Any] = []

    async def on_elicit(context, params):  # noqa: ANN001, ANN202
        asked.append(params)
        return ElicitResult(action="accept", content={"signature": "Ada"})

    async with serving(jobs.app()) as base, httpx.AsyncClient(timeout=10) as raw:
        await register(registry, "sjobs-sign", f"{base}/mcp")
        await stack.wait_for_tool(raw, "sjobs-sign__sign")
        me = await Session(raw, f"{stack.url}/mcp", stack.admin).open()
        plain = await me.request("tools/call", {"name": "sjobs-sign__sign", "arguments": {}})
        created = await me.request(
            "tools/call", {"name": "sjobs-sign__sign", "arguments": {}, "task": {}}
        )
        task_id = created["result"]["task"]["taskId"]
        http, client = sdk_client(stack, elicitation_callback=on_elicit)
        async with http, client:
            request = GetTaskRequest(params=GetTaskRequestParams(task_id=task_id))
            async with asyncio.timeout(5):
                while (await client.session.send_request(request, GetTaskResult)).status != (
                    "input_required"
                ):
                    await asyncio.sleep(0.05)
            outcome = await client.session.send_request(
                GetTaskPayloadRequest(params=GetTaskPayloadRequestParams(task_id=task_id)),
                CallToolResult,
            )
            done = await client.session.send_request(request, GetTaskResult)
    assert plain["error"]["code"] == -32601  # the upstream requires a task for this tool
    assert asked[0].message == "Sign here"
    assert asked[0].meta[RELATED]["taskId"] == task_id
    assert outcome.content[0].text == "signed by Ada"
    assert done.status == "completed"


async def test_tasks_are_the_creators_alone(registry, stack) -> None:
    jobs = SessionTaskServer()
    other = await stack.auth.create_user(platform_admin=True)  # may execute there too
    async with serving(jobs.app()) as base, httpx.AsyncClient(timeout=10) as raw:
        await register(registry, "sjobs-owned", f"{base}/mcp")
        await stack.wait_for_tool(raw, "sjobs-owned__render")
        me = await Session(raw, f"{stack.url}/mcp", stack.admin).open()
        them = await Session(raw, f"{stack.url}/mcp", other.token).open()
        mine = (await me.request("tools/call", call("sjobs-owned")))["result"]["task"]["taskId"]
        theirs = (await them.request("tools/call", call("sjobs-owned")))["result"]["task"]["taskId"]
        edited = "/".join([*theirs.split("/")[:2], mine.rsplit("/", 1)[1]])
        answers = [
            await them.request(method, {"taskId": task_id})
            for method in ("tasks/get", "tasks/result", "tasks/cancel")
            for task_id in (mine, edited)
        ]
        their_list = await them.request("tasks/list", {})
        my_list = await me.request("tasks/list", {})
    assert [a["error"]["code"] for a in answers] == [-32602] * 6
    assert [t["taskId"] for t in their_list["result"]["tasks"]] == [theirs]
    assert mine in [t["taskId"] for t in my_list["result"]["tasks"]]
    assert theirs not in [t["taskId"] for t in my_list["result"]["tasks"]]
    assert all(t["status"] == "working" for t in jobs.tasks.values())


async def test_a_task_is_cancelled_and_followed_from_another_replica(
    registry, stack, replica_b
) -> None:
    jobs = SessionTaskServer()
    async with serving(jobs.app()) as base, httpx.AsyncClient(timeout=10) as raw:
        await register(registry, "sjobs-cancel", f"{base}/mcp")
        await stack.wait_for_tool(raw, "sjobs-cancel__render")
        me = await Session(raw, f"{stack.url}/mcp", stack.admin).open()
        async with me.stream(f"{replica_b}/mcp") as events:  # the stream is on replica B
            created = await me.request("tools/call", call("sjobs-cancel"))  # the task on replica A
            task_id = created["result"]["task"]["taskId"]
            http, client = sdk_client(stack)
            async with http, client:
                cancelled = await client.session.send_request(
                    CancelTaskRequest(params=CancelTaskRequestParams(task_id=task_id)),
                    CancelTaskResult,
                )
            status = await next_status(events)
            again = await me.request("tasks/cancel", {"taskId": task_id}, f"{replica_b}/mcp")
            polled = await me.request("tasks/get", {"taskId": task_id}, f"{replica_b}/mcp")
    assert (cancelled.task_id, cancelled.status) == (task_id, "cancelled")
    assert (status["taskId"], status["status"]) == (task_id, "cancelled")
    assert again["error"]["code"] == -32602  # already terminal: the upstream's answer, relayed
    assert polled["result"]["status"] == "cancelled"


async def test_tasks_need_a_2025_11_25_session_and_a_willing_upstream(registry, stack) -> None:
    old_sdk = legacy_only(rich("oldsdk").streamable_http_app(transport_security=LOCAL))
    async with (
        run_upstream(rich("plain")) as modern_url,
        serving(old_sdk) as old_base,
        httpx.AsyncClient(timeout=10) as raw,
    ):
        await register(registry, "plain", modern_url)
        await register(registry, "oldsdk", f"{old_base}/mcp")
        await stack.wait_for_tool(raw, "plain__add")
        await stack.wait_for_tool(raw, "oldsdk__add")
        mcp = f"{stack.url}/mcp"
        me = await Session(raw, mcp, stack.admin).open()
        older = await Session(raw, mcp, stack.admin).open("2025-06-18")
        task = {"task": {"ttl": 1000}}
        add = {"name": "plain__add", "arguments": {"a": 1, "b": 2}}
        old_add = {"name": "oldsdk__add", "arguments": {"a": 2, "b": 2}}
        refused_modern = await me.request("tools/call", {**add, **task})
        refused_session = await me.request("tools/call", {**old_add, **task})
        plain = await me.request("tools/call", old_add)
        ignored = await older.request("tools/call", {**add, **task})
        unknown = await older.request("tasks/get", {"taskId": "plain/x/y"})
        unlisted = await older.request("tasks/list", {})
    assert "tasks" not in older.capabilities
    # neither upstream declared task-augmented calls as a 2025-11-25 session: the tool has none
    assert refused_modern["error"]["code"] == refused_session["error"]["code"] == -32601
    assert plain["result"]["content"][0]["text"] == "4"
    assert ignored["result"]["content"][0]["text"] == "3"  # no tasks in 2025-06-18: a plain call
    assert unknown["error"]["code"] == unlisted["error"]["code"] == -32601


async def test_bad_task_params_are_invalid_params(registry, stack) -> None:
    jobs = SessionTaskServer()
    async with serving(jobs.app()) as base, httpx.AsyncClient(timeout=10) as raw:
        await register(registry, "sjobs-bad", f"{base}/mcp")
        await stack.wait_for_tool(raw, "sjobs-bad__render")
        me = await Session(raw, f"{stack.url}/mcp", stack.admin).open()
        answers = [
            await me.request("tools/call", {**call("sjobs-bad"), "task": "soon"}),
            await me.request("tools/call", {**call("sjobs-bad"), "task": {"ttl": -1}}),
            await me.request("tools/call", {**call("sjobs-bad"), "task": {"ttl": "long"}}),
            await me.request("tasks/get", {}),
            await me.request("tasks/result", {"taskId": ["sjobs-bad"]}),
            await me.request("tasks/cancel", {"taskId": "sjobs-bad/0000/" + "x" * 300}),
            await me.request("tasks/list", {"cursor": "not a cursor"}),
            await me.request("tasks/list", {"cursor": 12}),
        ]
    assert [a["error"]["code"] for a in answers] == [-32602] * len(answers)
    assert jobs.augmented == []


async def test_tasks_list_pages_the_callers_tasks_and_names_failing_servers(
    registry, core_factory
) -> None:
    core = await core_factory(GATEWAY_LIST_PAGE_SIZE=2)
    up, down = SessionTaskServer(), SessionTaskServer()

    def pager() -> Principal:
        """The caller, its grants bound to the servers once they are registered."""
        grants = (("t", s, {"execute"}) for s in ("pages-up", "pages-down"))
        return replace(member(*grants), id=f"u-{run}", name="pager")

    run = uuid.uuid4().hex

    async def create(server: str) -> str:
        call = {"name": f"{server}__render", "arguments": {}, "task": {}}
        return (await core.call(pager(), "tools/call", call))["task"]["taskId"]

    async with serving(up.app()) as up_base:
        async with serving(down.app()) as down_base:
            await register(registry, "pages-up", f"{up_base}/mcp")
            await register(registry, "pages-down", f"{down_base}/mcp")
            await core.wait_for_tool("pages-up__render")
            await core.wait_for_tool("pages-down__render")
            made = [await create("pages-down")] + [await create("pages-up") for _ in range(3)]
            pages, params = [], {}
            while True:
                pages.append(await core.call(pager(), "tasks/list", params))
                if "nextCursor" not in pages[-1]:
                    break
                params = {"cursor": pages[-1]["nextCursor"]}
        after = await core.call(pager(), "tasks/list", {})  # pages-down is not answering now
        others = await core.call(ADMIN, "tasks/list", {})
    assert [[t["taskId"] for t in page["tasks"]] for page in pages] == [made[:2], made[2:]]
    assert [t["taskId"] for t in after["tasks"]] == [made[1]]
    assert after["_meta"]["io.switchboard/unavailableServers"] == ["pages-down"]
    assert "nextCursor" in after
    assert not set(made) & {t["taskId"] for t in others["tasks"]}


async def test_task_status_and_resource_updates_share_the_upstream_session_stream(
    registry, stack
) -> None:
    # the upstream allows one standalone stream per session (a second GET is 409), like the SDK
    jobs = SessionTaskServer()
    async with serving(jobs.app()) as base, httpx.AsyncClient(timeout=10) as raw:
        await register(registry, "sjobs-both", f"{base}/mcp")
        await stack.wait_for_tool(raw, "sjobs-both__render")
        me = await Session(raw, f"{stack.url}/mcp", stack.admin).open()
        async with me.stream() as events:
            wrapped = "switchboard://sjobs-both/job://report"
            subscribed = await me.request("resources/subscribe", {"uri": wrapped})
            created = await me.request("tools/call", call("sjobs-both"))
            upstream_id = created["result"]["task"]["taskId"].rsplit("/", 1)[1]
            jobs.change(upstream_id, "input_required", "waiting")
            jobs.touch("job://report")
            seen: dict[str, dict] = {}
            async with asyncio.timeout(5):
                while len(seen) < 2:
                    msg = await events.get()
                    if msg.get("method", "").startswith(
                        ("notifications/tasks", "notifications/res")
                    ):
                        seen[msg["method"]] = msg["params"]
    assert "error" not in subscribed, subscribed
    assert seen["notifications/resources/updated"] == {"uri": wrapped}
    assert seen["notifications/tasks/status"]["status"] == "input_required"
