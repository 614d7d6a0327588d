"""The gateway's lean HTTP/1.1 client against real sockets: framing, keep-alive, failures.

The peer is a real TCP server whose answers are written byte for byte, so each framing case
(Content-Length, chunked, close-delimited, 1xx, garbage, a connection cut mid-body) is exact.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from libs.common.outbound import Guard
from libs.common.sse import Event
from services.gateway.upstreams.http_client import HttpFailure, TooLarge, UpstreamHttp

Answer = Callable[[bytes, asyncio.Transport], None]
LOCAL = Guard(["127.0.0.0/8"])  # the peers listen on loopback


class Peer:
    """A TCP server answering each request (head + Content-Length body) with `answer`."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.transports: list[asyncio.Transport] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/mcp?x=1"

    def protocol(self) -> asyncio.Protocol:
        peer = self

        class Conn(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                peer.connections += 1
                self.transport = transport
                peer.transports.append(transport)  # type: ignore[arg-type]
                self.buf = b""

            def data_received(self, data: bytes) -> None:
                self.buf += data
                while b"\r\n\r\n" in self.buf:
                    head, _, rest = self.buf.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    if len(rest) < length:
                        return
                    request, self.buf = head + b"\r\n\r\n" + rest[:length], rest[length:]
                    peer.requests.append(request)
                    peer.answer(request, self.transport)  # type: ignore[arg-type]

        return Conn()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Answer], asyncio.Future]]:
    peers: list[Peer] = []

    async def start(answer: Answer) -> Peer:
        peer = Peer(answer)
        loop = asyncio.get_running_loop()
        peer.server = await loop.create_server(peer.protocol, "127.0.0.1", 0)
        peers.append(peer)
        return peer

    yield start  # type: ignore[misc]
    for peer in peers:
        assert peer.server is not None
        for transport in peer.transports:
            transport.close()
        peer.server.close()
        await peer.server.wait_closed()


@pytest.fixture
async def client() -> AsyncIterator[UpstreamHttp]:
    http = UpstreamHttp(LOCAL, connect_timeout_s=2)
    yield http
    await http.close()


def json_answer(body: bytes = b'{"ok":true}', extra: bytes = b"") -> Answer:
    def answer(request: bytes, transport: asyncio.Transport) -> None:
        transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + extra
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )

    return answer


async def test_a_kept_alive_connection_carries_every_request(serve, client) -> None:
    peer = await serve(json_answer())
    for _ in range(5):
        resp = await client.post(peer.url, b"{}", {"Accept": "application/json"})
        assert resp.status == 200
        assert resp.headers["content-type"] == "application/json"
        assert await resp.read() == b'{"ok":true}'
    assert peer.connections == 1
    assert len(peer.requests) == 5


async def test_the_request_carries_host_path_length_and_the_given_headers(serve, client) -> None:
    peer = await serve(json_answer())
    headers = {"Authorization": "Bearer s3cret", "Mcp-Method": "tools/call"}
    await (await client.post(peer.url, b'{"a":1}', headers)).read()
    head, _, body = peer.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    port = peer.url.split(":")[2].split("/")[0]
    assert lines[0] == b"POST /mcp?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}".encode() in lines
    assert b"Content-Length: 7" in lines
    assert b"Authorization: Bearer s3cret" in lines
    assert b"Mcp-Method: tools/call" in lines
    assert body == b'{"a":1}'


async def test_framing_headers_are_the_clients_own(serve, client) -> None:
    peer = await serve(json_answer())
    headers = {"Content-Length": "999", "Transfer-Encoding": "chunked", "Host": "virtual.example"}
    await (await client.post(peer.url, b"{}", headers)).read()
    head = peer.requests[0].split(b"\r\n\r\n")[0].split(b"\r\n")
    assert b"Content-Length: 2" in head and b"Content-Length: 999" not in head
    assert not any(line.lower().startswith(b"transfer-encoding") for line in head)
    assert [line for line in head if line.lower().startswith(b"host:")] == [
        b"Host: virtual.example"
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"Mcp-Name": "echo\r\nX-Injected: 1"},
        {"Bad\nName": "x"},
        {"Mcp-Name": "a\rb"},
        {"Mcp-Name": "nul\0"},
        {"Mcp-Name": "snowman \u2603"},
    ],
)
async def test_a_header_that_would_split_the_request_is_refused_and_nothing_is_sent(
    serve, client, headers
) -> None:
    peer = await serve(json_answer())
    with pytest.raises(HttpFailure):
        await client.post(peer.url, b"{}", headers)
    await asyncio.sleep(0.05)
    assert peer.requests == []


async def test_a_chunked_body_is_read_whole_and_event_by_event(serve, client) -> None:
    def answer(request: bytes, transport: asyncio.Transport) -> None:
        transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b"8\r\ndata: 1\n\r\n"
        )
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, transport.write, b"3\r\n\nda\r\n")
        loop.call_later(0.04, transport.write, b"7\r\nta: 2\n\n\r\n0\r\n\r\n")

    peer = await serve(answer)
    resp = await client.post(peer.url, b"{}", {})
    first, second, end = [await resp.next_event() for _ in range(3)]
    assert (first, second, end) == (Event(b"1"), Event(b"2"), None)
    resp.release()
    resp = await client.post(peer.url, b"{}", {})
    assert await resp.read() == b"data: 1\n\ndata: 2\n\n"
    assert peer.connections == 1  # the chunked answers ended cleanly: the connection was kept


async def test_a_body_delimited_by_the_connection_end_is_complete_and_not_reused(
    serve, client
) -> None:
    def answer(request: bytes, transport: asyncio.Transport) -> None:
        transport.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"a":')
        asyncio.get_running_loop().call_later(
            0.02, lambda: (transport.write(b"1}"), transport.close())
        )

    peer = await serve(answer)
    assert await (await client.post(peer.url, b"{}", {})).read() == b'{"a":1}'
    assert await (await client.post(peer.url, b"{}", {})).read() == b'{"a":1}'
    assert peer.connections == 2


async def test_connection_close_is_honoured(serve, client) -> None:
    peer = await serve(json_answer(extra=b"Connection: close\r\n"))
    for _ in range(2):
        assert await (await client.post(peer.url, b"{}", {})).read() == b'{"ok":true}'
    assert peer.connections == 2


async def test_an_informational_head_is_skipped(serve, client) -> None:
    inner = json_answer()

    def answer(request: bytes, transport: asyncio.Transport) -> None:
        transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        inner(request, transport)

    peer = await serve(answer)
    resp = await client.post(peer.url, b"{}", {})
    assert resp.status == 200
    assert await resp.read() == b'{"ok":true}'


async def test_an_answer_that_is_not_http_fails_cleanly(serve, client) -> None:
    peer = await serve(lambda request, transport: transport.write(b"garbage\r\n\r\n"))
    with pytest.raises(HttpFailure):
        await client.post(peer.url, b"{}", {})
    peer.answer = json_answer()
    assert await (await client.post(peer.url, b"{}", {})).read() == b'{"ok":true}'
    assert peer.connections == 2


async def test_a_connection_closed_before_the_answer_fails(serve, client) -> None:
    peer = await serve(lambda request, transport: transport.close())
    with pytest.raises(HttpFailure, match="closed the connection"):
        await client.post(peer.url, b"{}", {})


async def test_a_connection_cut_mid_body_fails_the_read(serve, client) -> None:
    def answer(request: bytes, transport: asyncio.Transport) -> None:
        transport.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial"')
        asyncio.get_running_loop().call_later(0.02, transport.close)

    peer = await serve(answer)
    resp = await client.post(peer.url, b"{}", {})
    with pytest.raises(HttpFailure):
        await resp.read()


async def test_a_response_dropped_half_read_closes_its_connection(serve, client) -> None:
    def answer(request: bytes, transport: asyncio.Transport) -> None:
        transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")

    peer = await serve(answer)
    resp = await client.post(peer.url, b"{}", {})
    reader = asyncio.ensure_future(resp.read())
    await asyncio.sleep(0.02)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    resp.release()  # what the gateway's `finally` does: the connection cannot be reused
    peer.answer = json_answer()
    assert await (await client.post(peer.url, b"{}", {})).read() == b'{"ok":true}'
    assert peer.connections == 2


async def test_a_request_cancelled_before_its_answer_closes_its_connection(serve, client) -> None:
    peer = await serve(lambda request, transport: None)  # never answers
    call = asyncio.ensure_future(client.post(peer.url, b"{}", {}))
    await asyncio.sleep(0.05)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    peer.answer = json_answer()
    assert await (await client.post(peer.url, b"{}", {})).read() == b'{"ok":true}'
    assert peer.connections == 2


async def test_a_pooled_connection_the_server_closed_is_not_used_again(serve, client) -> None:
    peer = await serve(json_answer())
    await (await client.post(peer.url, b"{}", {})).read()
    peer.transports[0].close()  # the server's keep-alive timeout
    await asyncio.sleep(0.05)
    assert await (await client.post(peer.url, b"{}", {})).read() == b'{"ok":true}'
    assert peer.connections == 2


async def test_an_unreachable_upstream_and_a_bad_url_fail_cleanly(client) -> None:
    with pytest.raises(HttpFailure, match="cannot connect"):
        await client.post("http://127.0.0.1:1/mcp", b"{}", {})
    for url in ("ftp://x/mcp", "http:///mcp", "http://127.0.0.1:99999/mcp"):
        with pytest.raises(HttpFailure):
            await client.post(url, b"{}", {})


def self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A certificate for 127.0.0.1: the server's context and a client context trusting it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "switchboard-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


async def test_https_upstreams_are_verified_and_kept_alive(tmp_path: Path) -> None:
    server_tls, client_tls = self_signed(tmp_path)
    peer = Peer(json_answer())
    loop = asyncio.get_running_loop()
    peer.server = await loop.create_server(peer.protocol, "127.0.0.1", 0, ssl=server_tls)
    url = peer.url.replace("http://", "https://")
    trusting, default = UpstreamHttp(LOCAL, 2, tls=client_tls), UpstreamHttp(LOCAL, 2)
    try:
        for _ in range(3):
            assert await (await trusting.post(url, b"{}", {})).read() == b'{"ok":true}'
        assert peer.connections == 1
        with pytest.raises(HttpFailure, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
            await default.post(url, b"{}", {})  # not in the system's trust store
    finally:
        await trusting.close()
        await default.close()
        for transport in peer.transports:
            transport.close()
        peer.server.close()
        await peer.server.wait_closed()


async def test_a_kept_alive_connection_closed_as_the_request_crosses_it_is_retried_once(
    serve, client
) -> None:
    """The server's idle timeout closing the connection just as a request is written.

    The server never read it, so it goes again on a new connection (a fresh one is never
    retried)."""
    inner = json_answer()

    def answer(request: bytes, transport: asyncio.Transport) -> None:
        if len(peer.requests) == 2:  # the second request on the first connection: close
            transport.close()
        else:
            inner(request, transport)

    peer = await serve(answer)
    assert await (await client.post(peer.url, b"{}", {})).read() == b'{"ok":true}'
    assert await (await client.post(peer.url, b"{}", {})).read() == b'{"ok":true}'
    assert peer.connections == 2
    assert len(peer.requests) == 3


async def test_an_answer_cut_after_its_first_byte_is_not_sent_again(serve, client) -> None:
    inner = json_answer()

    def answer(request: bytes, transport: asyncio.Transport) -> None:
        if len(peer.requests) == 2:
            transport.write(b"HTTP/1.1 200 OK\r\n")  # the server started answering
            transport.close()
        else:
            inner(request, transport)

    peer = await serve(answer)
    await (await client.post(peer.url, b"{}", {})).read()
    with pytest.raises(HttpFailure):
        await client.post(peer.url, b"{}", {})
    assert len(peer.requests) == 2


def endless(head: bytes, chunk: bytes, sent: list[int]) -> Answer:
    """An answer whose body never ends: `chunk` after `chunk` while the client reads on."""

    def answer(request: bytes, transport: asyncio.Transport) -> None:
        transport.write(head)

        async def pump() -> None:
            while not transport.is_closing() and sent[0] < 2 * 1024**3:
                transport.write(chunk)
                sent[0] += len(chunk)
                while transport.get_write_buffer_size() > 1024 * 1024:
                    await asyncio.sleep(0.001)
                    if transport.is_closing():
                        return

        asyncio.get_running_loop().create_task(pump())

    return answer


async def test_a_2_gb_json_answer_is_refused_while_it_is_read_not_held(serve) -> None:
    sent = [0]
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    peer = await serve(endless(head % (2 * 1024**3), b"x" * 65536, sent))
    client = UpstreamHttp(LOCAL, 2, max_body_bytes=1024 * 1024)
    try:
        resp = await client.post(peer.url, b"{}", {})
        with pytest.raises(TooLarge):
            await resp.read()
        async with asyncio.timeout(5):
            while not peer.transports[0].is_closing():
                await asyncio.sleep(0.01)
    finally:
        await client.close()
    assert sent[0] < 64 * 1024 * 1024  # the peer was cut off long before 2 GB


async def test_an_sse_event_past_the_limit_is_refused_as_it_grows(serve) -> None:
    sent = [0]
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: "
    peer = await serve(endless(head, b"y" * 65536, sent))
    client = UpstreamHttp(LOCAL, 2, max_body_bytes=1024 * 1024)
    try:
        resp = await client.post(peer.url, b"{}", {})
        with pytest.raises(TooLarge):
            await resp.next_event()
    finally:
        await client.close()
    assert sent[0] < 64 * 1024 * 1024


async def test_many_small_events_beyond_the_limit_in_total_all_arrive(serve) -> None:
    count = 3000
    events = b"".join(b"data: %05d%s\n\n" % (i, b"z" * 1000) for i in range(count))

    def answer(request: bytes, transport: asyncio.Transport) -> None:
        if len(peer.requests) > 1:
            return json_answer()(request, transport)
        transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        transport.write(b"Content-Length: %d\r\n\r\n" % len(events) + events)

    peer = await serve(answer)
    client = UpstreamHttp(LOCAL, 2, max_body_bytes=64 * 1024)  # 3 MB in 1 kB events
    try:
        resp = await client.post(peer.url, b"{}", {})
        got = 0
        while (event := await resp.next_event()) is not None:
            assert event.data.startswith(b"%05d" % got)
            got += 1
            if got % 500 == 0:
                await asyncio.sleep(0.01)  # a slow reader: the connection waits for it
        resp.release()
        assert got == count
        assert await (await client.post(peer.url, b"{}", {})).read() == b'{"ok":true}'  # reused
    finally:
        await client.close()
    assert peer.connections == 1


async def test_an_address_the_ssrf_rules_refuse_is_never_connected(serve) -> None:
    peer = await serve(json_answer())
    client = UpstreamHttp(Guard([]), 2)
    try:
        with pytest.raises(HttpFailure, match="SSRF"):
            await client.post(peer.url, b"{}", {})
    finally:
        await client.close()
    assert peer.connections == 0
