"""The Tasks extension (`io.modelcontextprotocol/tasks`, 2026-07-28) through the gateway."""

from __future__ import annotations

import asyncio

import httpx

from tests.integration.gateway.conftest import bearer, modern_body, modern_headers, register
from tests.integration.gateway.task_upstreams import TaskServer
from tests.support import serving
from tests.support.sse import stream_messages

TASKS = "io.modelcontextprotocol/tasks"


def call(server: str) -> dict:
    """The arguments of a tools/call of `render` on `server`."""
    return {"name": f"{server}__render", "arguments": {}}


def with_tasks(body: dict) -> dict:
    """A 2026-07-28 request body whose client capabilities declare the Tasks extension."""
    meta = body["params"]["_meta"]
    meta["io.modelcontextprotocol/clientCapabilities"] = {"extensions": {TASKS: {}}}
    return body


async def create_task(
    http: httpx.AsyncClient, url: str, server: str, token: str | None = None
) -> str:
    """A task-creating tools/call (declaring the extension); the wrapped task id."""
    headers = modern_headers("tools/call", f"{server}__render")
    if token is not None:
        headers.update(bearer(token))
    created = await http.post(
        f"{url}/mcp", json=with_tasks(modern_body("tools/call", call(server))), headers=headers
    )
    assert created.json()["result"]["resultType"] == "task", created.text
    return created.json()["result"]["taskId"]


async def task_request(
    http: httpx.AsyncClient, url: str, method: str, params: dict, token: str | None = None
) -> httpx.Response:
    """One tasks/* request declaring the extension, `Mcp-Name` set to the task id."""
    name = params.get("taskId")
    headers = modern_headers(method, name if isinstance(name, str) else None)
    if token is not None:
        headers.update(bearer(token))
    return await http.post(
        f"{url}/mcp", json=with_tasks(modern_body(method, params)), headers=headers
    )


async def test_a_task_is_created_polled_and_cancelled_through_the_gateway(registry, stack) -> None:
    jobs = TaskServer()
    async with serving(jobs.app()) as base, httpx.AsyncClient(headers=bearer(stack.admin)) as http:
        await register(registry, "tasks-polled", f"{base}/mcp")
        await stack.wait_for_tool(http, "tasks-polled__render")
        mcp = f"{stack.url}/mcp"
        discover = await http.post(
            mcp, json=modern_body("server/discover", {}), headers=modern_headers("server/discover")
        )
        headers = modern_headers("tools/call", "tasks-polled__render")
        inline = await http.post(
            mcp, json=modern_body("tools/call", call("tasks-polled")), headers=headers
        )
        task_id = await create_task(http, stack.url, "tasks-polled")
        polled = await task_request(http, stack.url, "tasks/get", {"taskId": task_id})
        cancelled = await task_request(http, stack.url, "tasks/cancel", {"taskId": task_id})
    assert TASKS in discover.json()["result"]["capabilities"]["extensions"]
    assert inline.json()["result"]["content"][0]["text"] == "rendered inline"
    assert jobs.declared == [False, True]
    assert task_id.startswith("tasks-polled/") and task_id.endswith("/t1")
    polled_task = polled.json()["result"]
    assert polled_task["resultType"] == "complete"
    assert (polled_task["taskId"], polled_task["status"]) == (task_id, "working")
    assert cancelled.json()["result"] == {"resultType": "complete"}
    assert jobs.tasks["t1"]["status"] == "cancelled"
    assert jobs.names == [("tasks/get", "t1"), ("tasks/cancel", "t1")]  # Mcp-Name upstream


async def test_only_the_creator_reaches_a_task_from_any_replica(registry, stack, replica_b) -> None:
    jobs = TaskServer()
    other = await stack.auth.create_user(platform_admin=True)  # may execute there too
    async with serving(jobs.app()) as base, httpx.AsyncClient(headers=bearer(stack.admin)) as http:
        await register(registry, "tasks-owned", f"{base}/mcp")
        await stack.wait_for_tool(http, "tasks-owned__render")
        mine = await create_task(http, stack.url, "tasks-owned")
        theirs = await create_task(http, stack.url, "tasks-owned", other.token)
        # the other principal keeps its own owner segment and points it at our upstream task
        _, their_owner, _ = theirs.split("/", 2)
        edited = f"tasks-owned/{their_owner}/{mine.rsplit('/', 1)[1]}"
        foreign = await task_request(http, stack.url, "tasks/get", {"taskId": mine}, other.token)
        forged = await task_request(http, stack.url, "tasks/get", {"taskId": edited}, other.token)
        own = await task_request(http, replica_b, "tasks/get", {"taskId": theirs}, other.token)
    assert foreign.json()["error"]["code"] == -32602
    assert forged.json()["error"]["code"] == -32602
    assert own.json()["result"]["taskId"] == theirs
    assert [name for method, name in jobs.names] == ["t2"]  # nothing else reached the upstream


async def test_task_requests_follow_the_extension_rules(registry, stack) -> None:
    jobs = TaskServer()
    async with serving(jobs.app()) as base, httpx.AsyncClient(headers=bearer(stack.admin)) as http:
        await register(registry, "tasks-rules", f"{base}/mcp")
        await stack.wait_for_tool(http, "tasks-rules__render")
        mcp = f"{stack.url}/mcp"
        task_id = await create_task(http, stack.url, "tasks-rules")
        undeclared = await http.post(
            mcp,
            json=modern_body("tasks/get", {"taskId": task_id}),
            headers=modern_headers("tasks/get", task_id),
        )
        listed = await task_request(http, stack.url, "tasks/list", {})
        result = await task_request(http, stack.url, "tasks/result", {"taskId": task_id})
        missing = await task_request(http, stack.url, "tasks/get", {})
        number = await task_request(http, stack.url, "tasks/get", {"taskId": 7})
        garbage = await task_request(http, stack.url, "tasks/get", {"taskId": "tasks-rules/x/t1"})
    assert undeclared.status_code == 400
    assert undeclared.json()["error"]["code"] == -32021
    assert undeclared.json()["error"]["data"]["requiredCapabilities"]["extensions"] == {TASKS: {}}
    assert listed.json()["error"]["code"] == result.json()["error"]["code"] == -32601
    for bad in (missing, number, garbage):
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == -32602
    assert jobs.names == []


async def test_listen_with_task_ids_relays_task_notifications(registry, stack) -> None:
    jobs = TaskServer()
    async with serving(jobs.app()) as base, httpx.AsyncClient(headers=bearer(stack.admin)) as http:
        await register(registry, "tasks-listen", f"{base}/mcp")
        await stack.wait_for_tool(http, "tasks-listen__render")
        task_id = await create_task(http, stack.url, "tasks-listen")
        filter_ = {"notifications": {"taskIds": [task_id, "tasks-listen/forged/t1", 7, {"t": 1}]}}
        body = with_tasks(modern_body("subscriptions/listen", filter_, rid=9))
        undeclared = await http.post(
            f"{stack.url}/mcp",
            json=modern_body("subscriptions/listen", filter_),
            headers=modern_headers("subscriptions/listen"),
        )
        not_a_list = await http.post(
            f"{stack.url}/mcp",
            json=with_tasks(
                modern_body("subscriptions/listen", {"notifications": {"taskIds": "*"}})
            ),
            headers=modern_headers("subscriptions/listen"),
        )
        messages: list[dict] = []
        async with http.stream(
            "POST", f"{stack.url}/mcp", json=body, headers=modern_headers("subscriptions/listen")
        ) as stream:
            async with asyncio.timeout(5):
                async for message in stream_messages(stream):
                    messages.append(message)
                    if len(messages) == 1:
                        jobs.finish("t1", "rendered late")
                    if len(messages) == 2:
                        break
    assert undeclared.status_code == 400
    assert undeclared.json()["error"]["code"] == -32021
    assert not_a_list.status_code == 400
    assert not_a_list.json()["error"]["code"] == -32602
    ack, note = messages
    assert ack["method"] == "notifications/subscriptions/acknowledged"
    assert ack["params"]["notifications"]["taskIds"] == [task_id]
    assert note["method"] == "notifications/tasks"
    assert note["params"]["taskId"] == task_id
    assert note["params"]["status"] == "completed"
    assert note["params"]["result"]["content"][0]["text"] == "rendered late"
    assert note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 9
