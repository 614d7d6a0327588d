"""The Tasks extension (`io.modelcontextprotocol/tasks`) passed through to an upstream with it."""

from __future__ import annotations

import httpx

from tests.integration.gateway.conftest import bearer, modern_body, modern_headers, register
from tests.integration.gateway.upstreams import TaskServer
from tests.support import serving

TASKS = "io.modelcontextprotocol/tasks"


def with_tasks(body: dict) -> dict:
    """A 2026-07-28 request body whose client capabilities declare the Tasks extension."""
    meta = body["params"]["_meta"]
    meta["io.modelcontextprotocol/clientCapabilities"] = {"extensions": {TASKS: {}}}
    return body


async def test_a_task_is_created_polled_and_cancelled_through_the_gateway(registry, stack) -> None:
    jobs = TaskServer()
    other = await stack.auth.create_user()
    async with serving(jobs.app()) as base, httpx.AsyncClient(headers=bearer(stack.admin)) as http:
        await register(registry, "jobs", f"{base}/mcp")
        await stack.wait_for_tool(http, "jobs__render")
        mcp = f"{stack.url}/mcp"
        discover = await http.post(
            mcp, json=modern_body("server/discover", {}), headers=modern_headers("server/discover")
        )
        call = {"name": "jobs__render", "arguments": {}}
        headers = modern_headers("tools/call", "jobs__render")
        inline = await http.post(mcp, json=modern_body("tools/call", call), headers=headers)
        created = await http.post(
            mcp, json=with_tasks(modern_body("tools/call", call)), headers=headers
        )
        task_id = created.json()["result"]["taskId"]
        get = modern_body("tasks/get", {"taskId": task_id})
        polled = await http.post(mcp, json=with_tasks(get), headers=modern_headers("tasks/get"))
        foreign = await http.post(
            mcp,
            json=with_tasks(get),
            headers={**modern_headers("tasks/get"), **bearer(other.token)},
        )
        cancel = modern_body("tasks/cancel", {"taskId": task_id})
        cancelled = await http.post(
            mcp, json=with_tasks(cancel), headers=modern_headers("tasks/cancel")
        )
    assert TASKS in discover.json()["result"]["capabilities"]["extensions"]
    assert inline.json()["result"]["content"][0]["text"] == "rendered inline"
    assert jobs.declared == [False, True]
    assert created.json()["result"]["resultType"] == "task"
    assert task_id.startswith("jobs/") and task_id.endswith("/t1")
    assert polled.json()["result"] == {
        "resultType": "complete",
        "taskId": task_id,
        "status": "working",
    }
    assert foreign.json()["error"]["code"] == -32602
    assert cancelled.json()["result"]["status"] == "cancelled"
    assert jobs.tasks == {"t1": "cancelled"}
