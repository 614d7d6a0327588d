"""The coalescing uvicorn protocol: one write per simple response, streamed heads not delayed."""

from __future__ import annotations

import asyncio
import socket
import time

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from libs.common.http_protocol import CoalescingHttpToolsProtocol, CoalescingTransport
from libs.devstack.harness import serving


class Recorder(asyncio.Transport):
    """A transport that keeps every write (the one real transport cannot be inspected)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.writes.append(bytes(data))

    def writelines(self, chunks) -> None:  # type: ignore[override]
        self.writes.append(b"".join(chunks))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


async def test_head_and_body_go_out_in_one_write() -> None:
    inner = Recorder()
    wrapped = CoalescingTransport(inner, asyncio.get_running_loop())
    wrapped.write(HEAD)
    assert inner.writes == []
    wrapped.write(b"{}")
    assert inner.writes == [HEAD + b"{}"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing held
    assert inner.writes == [HEAD + b"{}"]


async def test_a_held_head_is_sent_on_the_next_loop_pass() -> None:
    inner = Recorder()
    wrapped = CoalescingTransport(inner, asyncio.get_running_loop())
    wrapped.write(HEAD)
    await asyncio.sleep(0)
    assert inner.writes == [HEAD]
    wrapped.write(b"later")
    assert inner.writes == [HEAD, b"later"]


async def test_order_is_kept_by_close_writelines_and_other_writes() -> None:
    inner = Recorder()
    wrapped = CoalescingTransport(inner, asyncio.get_running_loop())
    wrapped.write(b"not a head")
    wrapped.write(HEAD)
    wrapped.writelines([b"a", b"b"])
    wrapped.write(HEAD)
    wrapped.close()
    assert inner.writes == [b"not a head", HEAD, b"ab", HEAD]
    assert inner.closed


def app() -> Starlette:
    async def small(request):
        return JSONResponse({"ok": True})

    async def stream(request):
        async def chunks():
            yield b"first\n"
            await asyncio.sleep(0.3)
            yield b"second\n"

        return StreamingResponse(chunks(), media_type="text/plain")

    return Starlette(routes=[Route("/small", small), Route("/stream", stream)])


def recv_until(sock: socket.socket, marker: bytes, timeout: float = 2.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


async def test_a_real_server_answers_through_the_protocol() -> None:
    async with serving(app()) as base:
        port = int(base.rsplit(":", 1)[1])

        def exchange() -> tuple[bytes, bytes, float]:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"GET /small HTTP/1.1\r\nhost: x\r\n\r\n")
                small = recv_until(sock, b'{"ok":true}')
                sock.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
                t0 = time.monotonic()
                first = recv_until(sock, b"first")
                waited = time.monotonic() - t0
                rest = recv_until(sock, b"0\r\n\r\n")
                return small, first + rest, waited

        small, streamed, waited = await asyncio.to_thread(exchange)
    assert small.startswith(b"HTTP/1.1 200 OK\r\n") and small.endswith(b'{"ok":true}')
    assert b"first" in streamed and b"second" in streamed
    assert waited < 0.25  # the head and first chunk did not wait for the second chunk


def test_uvicorn_accepts_the_protocol_class() -> None:
    config = uvicorn.Config(app(), http=CoalescingHttpToolsProtocol)
    config.load()
    assert config.http_protocol_class is CoalescingHttpToolsProtocol
