"""Upstreams with tasks, by hand: small Starlette apps speaking JSON-RPC as the specifications say.

The official SDK (2.3.0) has the task wire types but no server side, in either revision.

- `TaskServer`: 2026-07-28, stateless, the Tasks extension (`io.modelcontextprotocol/tasks`):
  `tools/call` answers `resultType: "task"` when the request declares the extension; tasks/get,
  tasks/update, tasks/cancel; `notifications/tasks` on `subscriptions/listen` with `taskIds`.
- `SessionTaskServer`: 2025-11-25 with sessions and the core `tasks` capability: task-augmented
  `tools/call` (`params.task`), tasks/get, tasks/result (held open as SSE until the task ends,
  asking the client for input on that stream), tasks/list, tasks/cancel, and
  `notifications/tasks/status` on the session's standalone (`GET`) stream.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

EXT = "io.modelcontextprotocol/tasks"
RELATED = "io.modelcontextprotocol/related-task"
TERMINAL = ("completed", "failed", "cancelled")


def now() -> str:
    """An ISO 8601 timestamp."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def sse(message: dict[str, Any]) -> bytes:
    """One SSE event carrying a JSON-RPC message."""
    return b"event: message\ndata: " + orjson.dumps(message) + b"\n\n"


def rpc_error(rid: Any, code: int, message: str, status: int = 200, data: Any = None) -> Response:
    """A JSON-RPC error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return JSONResponse({"jsonrpc": "2.0", "id": rid, "error": error}, status_code=status)


def rpc_result(rid: Any, result: dict[str, Any], headers: dict | None = None) -> Response:
    """A JSON-RPC result response."""
    return JSONResponse({"jsonrpc": "2.0", "id": rid, "result": result}, headers=headers)


class TaskServer:
    """2026-07-28 with the Tasks extension; stateless, JSON answers, SSE for listen."""

    def __init__(self) -> None:
        self.tasks: dict[str, dict[str, Any]] = {}  # task id -> DetailedTask
        self.declared: list[bool] = []  # per tools/call: did the request declare the extension
        self.names: list[tuple[str, str | None]] = []  # tasks/* method and its Mcp-Name header
        self.listeners: list[tuple[set[str], asyncio.Queue[dict[str, Any]]]] = []
        self.listening = asyncio.Event()

    def app(self) -> ASGIApp:
        """The Starlette app serving POST /mcp."""

        async def mcp(request: Request) -> Response:
            body = await request.json()
            method, params = body["method"], body.get("params") or {}
            if method.startswith("tasks/"):
                self.names.append((method, request.headers.get("mcp-name")))
            if method == "subscriptions/listen":
                return self.listen(body["id"], params)
            caps = (params.get("_meta") or {}).get("io.modelcontextprotocol/clientCapabilities")
            declared = EXT in ((caps or {}).get("extensions") or {})
            if method.startswith("tasks/") and not declared:
                data = {"requiredCapabilities": {"extensions": {EXT: {}}}}
                return rpc_error(
                    body["id"], -32021, "Missing required client capability", 400, data
                )
            if method.startswith("tasks/") and params.get("taskId") not in self.tasks:
                return rpc_error(body["id"], -32602, "Failed to retrieve task: Task not found", 400)
            result = self.answer(method, params, declared)
            if result is None:
                return rpc_error(body["id"], -32601, f"Method not found: {method}", 404)
            return rpc_result(body["id"], {"resultType": "complete", **result})

        return Starlette(routes=[Route("/mcp", mcp, methods=["POST"])])

    def answer(self, method: str, params: dict[str, Any], declared: bool) -> dict | None:
        """The result of one request (resultType added by the caller when absent)."""
        if method == "server/discover":
            caps = {"tools": {}, "extensions": {EXT: {}}}
            return {"supportedVersions": ["2026-07-28"], "capabilities": caps, **NO_CACHE}
        if method == "tools/list":
            tools = [{"name": "render", "inputSchema": {"type": "object", "properties": {}}}]
            return {"tools": tools, **NO_CACHE}
        if method == "tools/call":
            self.declared.append(declared)
            if not declared:
                return {"content": [{"type": "text", "text": "rendered inline"}]}
            task_id = f"t{len(self.tasks) + 1}"
            stamp = now()
            self.tasks[task_id] = {
                "taskId": task_id,
                "status": "working",
                "createdAt": stamp,
                "lastUpdatedAt": stamp,
                "ttlMs": 60000,
                "pollIntervalMs": 100,
            }
            return {**self.tasks[task_id], "resultType": "task"}
        if method == "tasks/get":
            return dict(self.tasks[params["taskId"]])
        if method == "tasks/cancel":
            self.change(params["taskId"], status="cancelled")
            return {}
        if method == "tasks/update":
            return {}
        return None

    def listen(self, rid: Any, params: dict[str, Any]) -> Response:
        """`subscriptions/listen`: acknowledge the known task ids, then their notifications."""
        wanted = (params.get("notifications") or {}).get("taskIds") or []
        caps = (params.get("_meta") or {}).get("io.modelcontextprotocol/clientCapabilities")
        if wanted and EXT not in ((caps or {}).get("extensions") or {}):
            return rpc_error(rid, -32021, "Missing required client capability", 400)
        honored = [t for t in wanted if t in self.tasks]
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        entry = (set(honored), queue)
        meta = {"io.modelcontextprotocol/subscriptionId": rid}

        async def stream() -> AsyncIterator[bytes]:
            self.listeners.append(entry)
            try:
                ack = {"notifications": {"taskIds": honored}, "_meta": meta}
                yield sse(
                    {
                        "jsonrpc": "2.0",
                        "method": "notifications/subscriptions/acknowledged",
                        "params": ack,
                    }
                )
                self.listening.set()
                while True:
                    task = await queue.get()
                    note = {"jsonrpc": "2.0", "method": "notifications/tasks"}
                    yield sse({**note, "params": {**task, "_meta": meta}})
            finally:
                self.listeners.remove(entry)

        return StreamingResponse(stream(), media_type="text/event-stream")

    def change(self, task_id: str, **fields: Any) -> None:
        """Update a task and notify its listeners with the whole DetailedTask."""
        task = self.tasks[task_id]
        task.update(fields, lastUpdatedAt=now())
        for ids, queue in self.listeners:
            if task_id in ids:
                queue.put_nowait(dict(task))

    def finish(self, task_id: str, text: str) -> None:
        """Complete a task with a text result."""
        result = {"content": [{"type": "text", "text": text}], "isError": False}
        self.change(task_id, status="completed", result=result)


NO_CACHE = {"ttlMs": 0, "cacheScope": "public"}


class SessionTaskServer:
    """2025-11-25 with sessions and the core `tasks` capability."""

    VERSION = "2025-11-25"
    IDLE_S = 0.5
    CAPABILITIES = {
        "tools": {},
        "resources": {"subscribe": True},
        "tasks": {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}},
    }

    def __init__(self) -> None:
        self.sessions: dict[str, asyncio.Queue[dict[str, Any]]] = {}  # its standalone stream
        self.streaming: set[str] = set()
        self.tasks: dict[str, dict[str, Any]] = {}  # task id -> Task
        self.outcomes: dict[str, dict[str, Any]] = {}  # task id -> the tools/call result
        self.owners: dict[str, str] = {}  # task id -> the session that created it
        self.ended: dict[str, asyncio.Event] = {}
        self.answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.augmented: list[dict[str, Any]] = []  # params.task of each task-augmented call
        self.subscribed: dict[str, set[str]] = {}  # resource uri -> sessions following it
        self._ids = itertools.count(1)

    def app(self) -> ASGIApp:
        """The Starlette app serving POST, GET and DELETE /mcp."""
        return Starlette(routes=[Route("/mcp", self.endpoint, methods=["POST", "GET", "DELETE"])])

    async def endpoint(self, request: Request) -> Response:
        """One HTTP request of the Streamable HTTP transport."""
        version = request.headers.get("mcp-protocol-version")
        if version is not None and version != self.VERSION:
            return rpc_error(
                None, -32600, f"Bad Request: Unsupported protocol version {version}", 400
            )
        session = request.headers.get("mcp-session-id")
        if request.method == "POST":
            body = await request.json()
            if body.get("method") == "initialize":
                return self.initialize(body)
        if session is None:
            return rpc_error(None, -32000, "Bad Request: No valid session ID provided", 400)
        if session not in self.sessions:
            return rpc_error(None, -32001, "Session not found", 404)
        if request.method == "GET":
            return self.standalone(session)
        if request.method == "DELETE":
            self.sessions.pop(session, None)
            return Response(status_code=200)
        if "method" not in body:  # the client's answer to our request
            future = self.answers.pop(str(body.get("id")), None)
            if future is not None and not future.done():
                future.set_result(body)
            return Response(status_code=202)
        if "id" not in body:
            return Response(status_code=202)
        return await self.request(session, body["id"], body["method"], body.get("params") or {})

    def initialize(self, body: dict[str, Any]) -> Response:
        """A new session."""
        session = uuid.uuid4().hex
        self.sessions[session] = asyncio.Queue()
        result = {
            "protocolVersion": self.VERSION,
            "capabilities": self.CAPABILITIES,
            "serverInfo": {"name": "jobs-2025", "version": "1"},
        }
        return rpc_result(body["id"], result, {"Mcp-Session-Id": session})

    def standalone(self, session: str) -> Response:
        """The session's GET stream: the messages queued for it.

        Idle for IDLE_S, the server closes it (as it may); what comes meanwhile waits in the
        queue for the next GET."""
        if session in self.streaming:
            return Response(status_code=409)
        queue = self.sessions[session]

        async def stream() -> AsyncIterator[bytes]:
            self.streaming.add(session)
            try:
                while True:
                    try:
                        async with asyncio.timeout(self.IDLE_S):
                            message = await queue.get()
                    except TimeoutError:
                        return
                    yield sse(message)
            finally:
                self.streaming.discard(session)

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def request(self, session: str, rid: Any, method: str, params: dict) -> Response:
        """One JSON-RPC request of a session."""
        if method == "ping":
            return rpc_result(rid, {})
        if method == "tools/list":
            schema = {"type": "object", "properties": {}}
            tools = [
                {"name": "render", "inputSchema": schema, "execution": {"taskSupport": "optional"}},
                {"name": "sign", "inputSchema": schema, "execution": {"taskSupport": "required"}},
                {"name": "note", "inputSchema": schema},  # no `execution`: never a task
            ]
            return rpc_result(rid, {"tools": tools})
        if method == "tools/call":
            return self.call(session, rid, params)
        if method == "resources/list":
            return rpc_result(rid, {"resources": [{"uri": "job://report", "name": "report"}]})
        if method == "resources/templates/list":
            return rpc_result(rid, {"resourceTemplates": []})
        if method == "resources/subscribe":
            self.subscribed.setdefault(params["uri"], set()).add(session)
            return rpc_result(rid, {})
        if method == "resources/unsubscribe":
            self.subscribed.get(params["uri"], set()).discard(session)
            return rpc_result(rid, {})
        if method == "tasks/list":
            return rpc_result(rid, {"tasks": list(self.tasks.values())})
        task = self.tasks.get(params.get("taskId"))  # type: ignore[arg-type]
        if method in ("tasks/get", "tasks/result", "tasks/cancel") and task is None:
            return rpc_error(rid, -32602, "Failed to retrieve task: Task not found")
        if method == "tasks/get":
            return rpc_result(rid, dict(task))  # type: ignore[arg-type]
        if method == "tasks/cancel":
            if task["status"] in TERMINAL:  # type: ignore[index]
                return rpc_error(rid, -32602, f"Cannot cancel task: already {task['status']}")  # type: ignore[index]
            self.change(task["taskId"], "cancelled", "The task was cancelled by request.")  # type: ignore[index]
            return rpc_result(rid, dict(task))  # type: ignore[arg-type]
        if method == "tasks/result":
            return self.result(rid, task["taskId"])  # type: ignore[index]
        return rpc_error(rid, -32601, f"Method not found: {method}")

    def call(self, session: str, rid: Any, params: dict[str, Any]) -> Response:
        """tools/call: a task when augmented, else inline.

        `render` may be task-augmented, `sign` must; like a careless server, it does not check
        that `note` may not."""
        name, task = params.get("name"), params.get("task")
        if task is None:
            if name == "sign":
                return rpc_error(rid, -32601, "Task augmentation required for tools/call requests")
            return rpc_result(rid, {"content": [{"type": "text", "text": "rendered inline"}]})
        self.augmented.append(task)
        task_id, stamp = uuid.uuid4().hex, now()
        self.tasks[task_id] = {
            "taskId": task_id,
            "status": "working",
            "createdAt": stamp,
            "lastUpdatedAt": stamp,
            "ttl": min(task.get("ttl") or 60000, 60000),
            "pollInterval": 100,
        }
        self.owners[task_id] = session
        self.ended[task_id] = asyncio.Event()
        if name == "sign":  # it needs the user's signature before it can go on
            asyncio.get_running_loop().call_soon(self.change, task_id, "input_required")
        return rpc_result(rid, {"task": dict(self.tasks[task_id])})

    def result(self, rid: Any, task_id: str) -> Response:
        """tasks/result: the outcome at once when the task ended, else an SSE stream.

        The stream asks for pending input and carries the outcome once the task ends."""
        if self.tasks[task_id]["status"] in TERMINAL:
            return JSONResponse({"jsonrpc": "2.0", "id": rid, **self.outcome(task_id)})

        async def stream() -> AsyncIterator[bytes]:
            if self.tasks[task_id]["status"] == "input_required":
                ask_id = f"ask-{next(self._ids)}"
                future = asyncio.get_running_loop().create_future()
                self.answers[ask_id] = future
                params = {
                    "mode": "form",
                    "message": "Sign here",
                    "requestedSchema": {
                        "type": "object",
                        "properties": {"signature": {"type": "string"}},
                    },
                    "_meta": {RELATED: {"taskId": task_id}},
                }
                yield sse(
                    {
                        "jsonrpc": "2.0",
                        "id": ask_id,
                        "method": "elicitation/create",
                        "params": params,
                    }
                )
                answer = await future
                self.change(task_id, "working")
                signature = (answer.get("result") or {}).get("content", {}).get("signature")
                self.finish(task_id, f"signed by {signature}")
            await self.ended[task_id].wait()
            yield sse({"jsonrpc": "2.0", "id": rid, **self.outcome(task_id)})

        return StreamingResponse(stream(), media_type="text/event-stream")

    def outcome(self, task_id: str) -> dict[str, Any]:
        """`result` or `error` of a task that ended, as tools/call would have answered."""
        if task_id in self.outcomes:
            result = {**self.outcomes[task_id], "_meta": {RELATED: {"taskId": task_id}}}
            return {"result": result}
        return {"error": {"code": -32800, "message": "The task was cancelled."}}

    def change(self, task_id: str, status: str, message: str | None = None) -> None:
        """Move a task on; tell the session that created it (on its standalone stream)."""
        task = self.tasks[task_id]
        task.update(status=status, lastUpdatedAt=now())
        if message is not None:
            task["statusMessage"] = message
        if status in TERMINAL:
            self.ended[task_id].set()
        queue = self.sessions.get(self.owners[task_id])
        if queue is not None:
            note = {"jsonrpc": "2.0", "method": "notifications/tasks/status", "params": dict(task)}
            queue.put_nowait(note)

    def touch(self, uri: str) -> None:
        """A resource changed: tell the sessions following it (on their standalone streams)."""
        note = {"jsonrpc": "2.0", "method": "notifications/resources/updated"}
        note["params"] = {"uri": uri}
        for session in self.subscribed.get(uri, ()):
            if session in self.sessions:
                self.sessions[session].put_nowait(note)

    def finish(self, task_id: str, text: str) -> None:
        """Complete a task with a text result."""
        self.outcomes[task_id] = {"content": [{"type": "text", "text": text}], "isError": False}
        self.change(task_id, "completed")
