"""Upstreams that prime their SSE responses and may end them before answering (SEP-1699).

TypeScript SDK servers with an event store open every SSE response with a priming event
(`id:` + `retry:` + empty `data:`); a tool may close its stream and answer later, and the client
resumes with a GET carrying `Last-Event-ID`. The gateway is that client, for every upstream.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventCallback
from mcp_types import JSONRPCMessage, JSONRPCResponse
from starlette.types import Receive, Scope, Send

from services.gateway.jsonrpc import UPSTREAM_ERROR, RpcFault
from tests.integration.gateway.conftest import ADMIN, calculator, register
from tests.integration.registry.conftest import run_upstream
from tests.support import node, serving
from tests.support.upstreams import LOCAL, MemoryEventStore, handshake_era, read_body, replaying


def text_of(result: dict[str, Any]) -> str:
    """The first text content of a tools/call result."""
    return result["content"][0]["text"]


async def test_a_typescript_sdk_server_that_primes_its_streams_is_listed_and_called(
    registry, core_factory
) -> None:
    async with node.ts_server() as base:
        await register(registry, "ts", f"{base}/mcp")
        core = await core_factory()
        listed = await core.call(ADMIN, "tools/list", {})
        assert {"ts__add", "ts__echo", "ts__progress"} <= {t["name"] for t in listed["tools"]}
        added = await core.call(
            ADMIN, "tools/call", {"name": "ts__add", "arguments": {"a": 2, "b": 3}}
        )
        assert text_of(added) == "5"
        heard: list[dict[str, Any]] = []

        async def hear(msg: dict[str, Any]) -> None:
            heard.append(msg)

        params = {"name": "ts__progress", "arguments": {"steps": 3}, "_meta": {"progressToken": 7}}
        result = await core.call(ADMIN, "tools/call", params, notify=hear)
        assert text_of(result) == "done in 3"
        progress = [
            m["params"]["progress"] for m in heard if m["method"] == "notifications/progress"
        ]
        assert progress == [1, 2, 3]


async def test_a_call_whose_typescript_server_closes_the_stream_is_answered_after_resuming(
    registry, core_factory
) -> None:
    async with node.ts_server() as base:
        await register(registry, "tsr", f"{base}/mcp")
        core = await core_factory()
        params = {"name": "tsr__reconnect", "arguments": {"text": "hello"}}
        results = await asyncio.gather(*(core.call(ADMIN, "tools/call", params) for _ in range(3)))
        assert [text_of(r) for r in results] == ["resumed: hello"] * 3


async def test_a_call_whose_python_server_closes_the_stream_is_answered_after_resuming(
    registry, core_factory
) -> None:
    server = calculator("pyr")

    @server.tool(description="Close this call's stream, then answer.")
    async def reconnect(text: str, ctx: Context) -> str:
        await ctx.close_sse_stream()
        await asyncio.sleep(0.3)
        return f"resumed: {text}"

    async with run_upstream(server, handshake=True, resumable=True) as url:
        await register(registry, "pyr", url)
        core = await core_factory()
        result = await core.call(
            ADMIN, "tools/call", {"name": "pyr__reconnect", "arguments": {"text": "py"}}
        )
        assert text_of(result) == "resumed: py"


class SlowReplays(MemoryEventStore):
    """An event store that answers a replay only once `answers` responses are stored.

    As a store across the network may: what other sessions stored meanwhile is in the replay's
    range."""

    def __init__(self, answers: int) -> None:
        super().__init__()
        self.answers = answers
        self.changed = asyncio.Condition()

    async def store_event(self, stream_id: str, message: JSONRPCMessage | None) -> str:
        """Keep one event and wake the replays waiting for it."""
        event_id = await super().store_event(stream_id, message)
        async with self.changed:
            self.changed.notify_all()
        return event_id

    async def replay_events_after(
        self, last_event_id: str, send_callback: EventCallback
    ) -> str | None:
        """Wait until `answers` responses are stored, then replay."""
        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(
                lambda: (
                    sum(isinstance(m, JSONRPCResponse) for _, _, m in self.events) >= self.answers
                )
            )
        return await super().replay_events_after(last_event_id, send_callback)


async def test_a_resumed_call_never_takes_the_answer_another_session_stored_under_its_id(
    registry, core_factory
) -> None:
    # The Python SDK keeps one event store for all sessions and names each request's stream by
    # the request's id, so a replay covers every session's events under that id. Two replicas
    # (two upstream sessions) whose calls carry the same id would each resume into both answers.
    server = calculator("twins")

    @server.tool(description="Close this call's stream, then answer.")
    async def reconnect(text: str, ctx: Context) -> str:
        await ctx.close_sse_stream()
        return f"resumed: {text}"

    app = server.streamable_http_app(
        transport_security=LOCAL, event_store=SlowReplays(answers=2), retry_interval=10
    )
    async with serving(handshake_era(app)) as base:
        await register(registry, "twins", f"{base}/mcp")
        replicas = [await core_factory(), await core_factory()]
        results = await asyncio.gather(
            *(
                core.call(
                    ADMIN, "tools/call", {"name": "twins__reconnect", "arguments": {"text": who}}
                )
                for core, who in zip(replicas, ["a", "b"], strict=True)
            )
        )
    assert [text_of(r) for r in results] == ["resumed: a", "resumed: b"]


def primes_then_hangs_up(server: MCPServer) -> Any:
    """A server's app whose tools/call answers only a priming event and refuses every GET."""
    app = server.streamable_http_app()

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            await send({"type": "http.response.start", "status": 405, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] == "http" and scope["method"] == "POST":
            body = await read_body(receive)
            if b'"tools/call"' in body:
                headers = [(b"content-type", b"text/event-stream")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                priming = b"id: 1\nretry: 10\ndata: \n\n"
                await send({"type": "http.response.body", "body": priming})
                return
            await app(scope, replaying(body, receive), send)
            return
        await app(scope, receive, send)

    return wrapped


async def test_a_primed_stream_that_cannot_be_resumed_fails_the_call_cleanly(
    registry, core_factory
) -> None:
    async with serving(primes_then_hangs_up(calculator("hup"))) as base:
        await register(registry, "hup", f"{base}/mcp")
        core = await core_factory()
        with pytest.raises(RpcFault) as failed:
            async with asyncio.timeout(10):
                await core.call(
                    ADMIN, "tools/call", {"name": "hup__echo", "arguments": {"text": "x"}}
                )
    assert failed.value.code == UPSTREAM_ERROR
    assert "405" in failed.value.message
