"""Upstream MCP servers (official SDK) for protocol tests.

Progress, hangs, resources, prompts, resource subscriptions of 2025-era servers."""

from __future__ import annotations

import asyncio

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPError
from mcp_types import (
    Completion,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmptyResult,
    InputRequiredResult,
    PromptReference,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send


class Hangs:
    """What the `hang` tool saw: calls started and calls the upstream saw cancelled."""

    def __init__(self) -> None:
        self.started: set[str] = set()
        self.cancelled: set[str] = set()
        self.changed = asyncio.Condition()

    async def mark(self, kind: set[str], tag: str) -> None:
        """Record `tag` and wake waiters."""
        async with self.changed:
            kind.add(tag)
            self.changed.notify_all()

    async def wait(self, kind: set[str], tag: str, timeout: float = 5) -> None:
        """Until `tag` is recorded in `kind`."""
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: tag in kind)


class Name(BaseModel):
    """What `elicit` asks for."""

    name: str


def legacy_only(app: ASGIApp) -> ASGIApp:
    """An SDK Streamable HTTP app that refuses 2026-07-28 requests, like a 2025-era server."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or ())
        if scope["type"] == "http" and headers.get(b"mcp-protocol-version", b"").startswith(
            b"2026"
        ):
            body = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32022,"message":"unsupported"}}'
            start = {"type": "http.response.start", "status": 400}
            start["headers"] = [(b"content-type", b"application/json")]
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return wrapped


def without_get(app: ASGIApp) -> ASGIApp:
    """An SDK Streamable HTTP app without the standalone stream: GET is 405, as the spec allows."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            start = {"type": "http.response.start", "status": 405, "headers": [(b"allow", b"POST")]}
            await send(start)
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    return wrapped


def rich(name: str = "rich", hangs: Hangs | None = None) -> MCPServer:
    """Tools (add, progress, hang), resources (static and templated), a prompt with completion."""
    server = MCPServer(name)
    hangs = hangs or Hangs()

    @server.tool(description="Add two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Report `steps` progress notifications, then answer.")
    async def progress(steps: int, ctx: Context) -> str:
        for i in range(steps):
            await ctx.report_progress(i + 1, steps, f"step {i + 1}")
        return f"{steps} steps"

    @server.tool(description="Hang until cancelled.")
    async def hang(tag: str) -> str:
        await hangs.mark(hangs.started, tag)
        try:
            await asyncio.sleep(120)
        except asyncio.CancelledError:
            await hangs.mark(hangs.cancelled, tag)
            raise
        return "never"

    @server.tool(description="Ask the user's name (2026-07-28 multi-round-trip), then greet.")
    async def ask(ctx: Context) -> str | InputRequiredResult:
        answer = (ctx.input_responses or {}).get("name")
        if not isinstance(answer, ElicitResult) or answer.content is None:
            schema = {"type": "object", "properties": {"name": {"type": "string"}}}
            request = ElicitRequest(
                params=ElicitRequestFormParams(message="Your name?", requested_schema=schema)
            )
            return InputRequiredResult(input_requests={"name": request}, request_state="asked")
        return f"hello {answer.content['name']} ({ctx.request_state})"

    @server.tool(description="Ask the user's name with a server-to-client request, then greet.")
    async def elicit(ctx: Context) -> str:
        answer = await ctx.elicit("Your name, please?", Name)
        return f"hi {answer.data.name}" if answer.action == "accept" else answer.action

    @server.tool(description="Mark an item as changed (resource updated notification).")
    async def touch(item: str, ctx: Context) -> str:
        await ctx.notify_resource_updated(f"{name}://items/{item}")
        return "touched"

    @server.resource(f"{name}://readme", description="The readme.")
    def readme() -> str:
        return f"readme of {name}"

    @server.resource(f"{name}://items/{{item}}", description="One item.")
    def item(item: str) -> str:
        return f"item {item} of {name}"

    @server.prompt(description="Ask for a mood first (2026-07-28 multi-round-trip).")
    def mood(ctx: Context) -> str | InputRequiredResult:
        answer = (ctx.input_responses or {}).get("mood")
        if not isinstance(answer, ElicitResult) or answer.content is None:
            schema = {"type": "object", "properties": {"mood": {"type": "string"}}}
            request = ElicitRequest(
                params=ElicitRequestFormParams(message="Your mood?", requested_schema=schema)
            )
            return InputRequiredResult(input_requests={"mood": request})
        return f"Write something {answer.content['mood']}"

    @server.prompt(description="Greet someone.")
    def greet(who: str) -> str:
        return f"Hello {who} from {name}"

    @server.completion()
    async def complete(ref, argument, context):  # noqa: ANN001, ANN202
        if isinstance(ref, PromptReference) and argument.name == "who":
            names = ["alice", "albert", "bob"]
            return Completion(values=[n for n in names if n.startswith(argument.value)])
        return None

    return server


NOT_FOUND = -32002  # "Resource not found" of the 2025 revisions


class Followed:
    """A session-based upstream's resource subscriptions.

    Which sessions follow which URI, and every `resources/subscribe` / `resources/unsubscribe`
    it was sent."""

    def __init__(self) -> None:
        self.sessions: dict[str, set[ServerSession]] = {}
        self.requests: list[tuple[str, str]] = []
        self.changed = asyncio.Condition()

    async def record(self, method: str, uri: str, session: ServerSession) -> None:
        """Note one request and who follows `uri` now."""
        async with self.changed:
            self.requests.append((method, uri))
            following = self.sessions.setdefault(uri, set())
            if method == "resources/subscribe":
                following.add(session)
            else:
                following.discard(session)
            self.changed.notify_all()

    async def wait(self, method: str, uri: str, count: int = 1, timeout: float = 5) -> None:
        """Until `method` for `uri` arrived `count` times."""
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(lambda: self.requests.count((method, uri)) >= count)

    async def touch(self, uri: str) -> int:
        """Send `notifications/resources/updated` to every session following `uri`.

        Each on its standalone stream; returns how many were told."""
        following = list(self.sessions.get(uri, ()))
        for session in following:
            await session.send_resource_updated(uri)
        return len(following)


def followed(name: str, hub: Followed) -> MCPServer:
    """A 2025-era upstream with `resources/subscribe`: items, and a tool that changes one."""
    server = MCPServer(name)

    @server.tool(description="Change an item: its followers get notifications/resources/updated.")
    async def touch(item: str) -> str:
        return f"told {await hub.touch(f'{name}://items/{item}')}"

    @server.resource(f"{name}://items/{{item}}", description="One item.")
    def item(item: str) -> str:
        return f"item {item} of {name}"

    async def subscribe(ctx: ServerRequestContext, params: SubscribeRequestParams) -> EmptyResult:
        if not params.uri.startswith(f"{name}://items/"):
            raise MCPError(NOT_FOUND, f"No resource {params.uri}")
        await hub.record("resources/subscribe", params.uri, ctx.session)
        return EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext, params: UnsubscribeRequestParams
    ) -> EmptyResult:
        await hub.record("resources/unsubscribe", params.uri, ctx.session)
        return EmptyResult()

    # MCPServer has no decorator for these (2025-era) methods: the low-level server takes them,
    # and then declares `resources.subscribe` at handshake versions
    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)
    return server
