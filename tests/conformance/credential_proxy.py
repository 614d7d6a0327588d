"""A forwarding proxy that adds the gateway credential to each request and changes nothing else.

Why it exists: the conformance CLI cannot send a header, and the gateway refuses a request
without a credential. The proxy sits between the CLI and nginx, inserts `Authorization: Bearer
<key>` into each request head (unless the client sent one), and copies every other byte as it
came, both ways and as it arrives: the client's own headers (Host and Origin included, which
the `dns-rebinding-protection` scenario sets on purpose), bodies and SSE streams. Requests on a
keep-alive connection are framed by their Content-Length or chunked encoding; responses are
copied without being parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

HEAD_END = b"\r\n\r\n"
MAX_HEAD = 1 << 20


def with_credential(head: bytes, credential: str) -> bytes:
    """The request head with `Authorization: Bearer <credential>` added, unless it has one."""
    lines = head[: -len(HEAD_END)].split(b"\r\n")
    if any(line.lower().startswith(b"authorization:") for line in lines[1:]):
        return head
    lines.append(b"Authorization: Bearer " + credential.encode("latin-1"))
    return b"\r\n".join(lines) + HEAD_END


def body_framing(head: bytes) -> tuple[bool, int]:
    """(chunked, content length) of a request head."""
    chunked, length = False, 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"content-length":
            length = int(value.strip())
    return chunked, length


async def _copy_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one chunked body, trailers included, as it is."""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        writer.write(size_line)
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:
                trailer = await reader.readuntil(b"\r\n")
                writer.write(trailer)
                if trailer == b"\r\n":
                    return
        writer.write(await reader.readexactly(size + 2))
        await writer.drain()


async def _requests(
    client: asyncio.StreamReader, upstream: asyncio.StreamWriter, credential: str
) -> None:
    """Forward the client's requests one by one, each head with the credential."""
    while True:
        head = await client.readuntil(HEAD_END)
        upstream.write(with_credential(head, credential))
        chunked, length = body_framing(head)
        if chunked:
            await _copy_chunked(client, upstream)
        elif length:
            upstream.write(await client.readexactly(length))
        await upstream.drain()


async def _responses(upstream: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
    """Copy the upstream's bytes to the client as they arrive."""
    while data := await upstream.read(65536):
        client.write(data)
        await client.drain()


@asynccontextmanager
async def credential_proxy(target: str, credential: str) -> AsyncIterator[str]:
    """Serve the proxy to `target` (`http://host:port`) on 127.0.0.1; yields its base URL."""
    host, _, port = target.removeprefix("http://").partition(":")
    connections: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, int(port), limit=MAX_HEAD)
        directions = [
            asyncio.ensure_future(_requests(reader, up_writer, credential)),
            asyncio.ensure_future(_responses(up_reader, writer)),
        ]
        task = asyncio.current_task()
        assert task is not None
        connections.add(task)
        try:
            # either side ending (or failing) ends the connection
            await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for direction in directions:
                direction.cancel()
            for direction in directions:
                with contextlib.suppress(BaseException):
                    await direction
            up_writer.close()
            writer.close()
            connections.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0, limit=MAX_HEAD)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for task in list(connections):
            task.cancel()
        await server.wait_closed()
