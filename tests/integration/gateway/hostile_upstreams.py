"""A hand-written Streamable HTTP upstream whose tools answer what no SDK server would.

Endless bodies, one endless SSE event, malformed JSON-RPC errors. The handshake and listing are
real, so the registry discovers it with the official client like any other server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from tests.support.upstreams import read_body

Answer = Callable[[dict[str, Any], Send, "Hostile", Receive], Awaitable[None]]
CHUNK = b"x" * 65536


@dataclass
class Hostile:
    """The upstream's tools (name -> how it answers a call) and what it sent."""

    tools: dict[str, Answer]
    sent: int = 0  # body bytes written for calls
    calls: list[str] = field(default_factory=list)
    disconnected: bool = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP request: JSON-RPC over POST, 405 for the rest."""
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _reply(send, 405, b"")
            return
        msg = orjson.loads(await read_body(receive))
        method, rid = msg.get("method"), msg.get("id")
        if rid is None:
            await _reply(send, 202, b"")
            return
        if method == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "hostile", "version": "1"},
            }
            await _json(send, {"jsonrpc": "2.0", "id": rid, "result": result})
        elif method == "tools/list":
            tools = [
                {"name": name, "description": "hostile", "inputSchema": {"type": "object"}}
                for name in self.tools
            ]
            await _json(send, {"jsonrpc": "2.0", "id": rid, "result": {"tools": tools}})
        elif method == "tools/call" and msg["params"]["name"] in self.tools:
            self.calls.append(msg["params"]["name"])
            await self.tools[msg["params"]["name"]](msg, send, self, receive)
        elif method == "ping":
            await _json(send, {"jsonrpc": "2.0", "id": rid, "result": {}})
        else:
            error = {"code": -32601, "message": f"{method} not found"}
            await _json(send, {"jsonrpc": "2.0", "id": rid, "error": error})


async def _reply(send: Send, status: int, body: bytes, ctype: bytes = b"text/plain") -> None:
    """A whole response."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype)]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def _json(send: Send, message: dict[str, Any]) -> None:
    """A JSON-RPC message as application/json."""
    await _reply(send, 200, orjson.dumps(message), b"application/json")


async def endless(
    head: bytes, ctype: bytes, send: Send, upstream: Hostile, receive: Receive
) -> None:
    """`head`, then chunk after chunk, up to 2 GB or until the reader goes away."""

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        upstream.disconnected = True

    watcher = asyncio.get_running_loop().create_task(watch())
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", ctype)]})  # fmt: skip
    try:
        await send({"type": "http.response.body", "body": head, "more_body": True})
        while upstream.sent < 2 * 1024**3 and not upstream.disconnected:
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
            upstream.sent += len(CHUNK)
            await asyncio.sleep(0)  # a gone client makes `send` return at once: let watch run
        await send({"type": "http.response.body", "body": b""})
    except OSError:
        upstream.disconnected = True
    finally:
        watcher.cancel()


async def huge_json(msg: dict[str, Any], send: Send, upstream: Hostile, receive: Receive) -> None:
    """A JSON answer that never ends (a text result of 2 GB)."""
    head = b'{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"' % (
        orjson.dumps(msg["id"])
    )
    await endless(head, b"application/json", send, upstream, receive)


async def huge_event(msg: dict[str, Any], send: Send, upstream: Hostile, receive: Receive) -> None:
    """An SSE answer whose one event never ends."""
    head = b'data: {"jsonrpc":"2.0","id":%s,"result":{"content":"' % orjson.dumps(msg["id"])
    await endless(head, b"text/event-stream", send, upstream, receive)


def error_answer(error: Any) -> Answer:
    """A tool whose call is answered with `error` as the JSON-RPC error member."""

    async def answer(msg: dict[str, Any], send: Send, upstream: Hostile, receive: Receive) -> None:
        await _json(send, {"jsonrpc": "2.0", "id": msg["id"], "error": error})

    return answer


def result_answer(result: Any) -> Answer:
    """A tool whose call is answered with `result` as the JSON-RPC result member."""

    async def answer(msg: dict[str, Any], send: Send, upstream: Hostile, receive: Receive) -> None:
        await _json(send, {"jsonrpc": "2.0", "id": msg["id"], "result": result})

    return answer
