"""The outbound guard on real sockets: pinned addresses, rebinding, literals, redirects."""

from __future__ import annotations

import asyncio

import aiohttp
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.transport_security import TransportSecuritySettings

from libs.common.outbound import Guard, OutboundRefused, RedirectRefused
from libs.common.ssrf import SsrfRefused
from libs.devstack.harness import serving
from tests.support.listeners import Rebinder, listening
from tests.support.upstreams import make_upstream

LOOPBACK_V4 = ["127.0.0.0/8"]
NAMED = TransportSecuritySettings(
    enable_dns_rebinding_protection=True,
    allowed_hosts=["upstream.invalid:*"],
    allowed_origins=["http://upstream.invalid:*"],
)


async def test_the_http_client_reaches_the_vetted_address_with_the_name_in_host_and_nothing_else():
    # `.invalid` never resolves: the request can only succeed through the guard's answer, and
    # the upstream (which accepts only that Host header) proves the name still travels
    app = make_upstream().streamable_http_app(transport_security=NAMED)
    dns = Rebinder({"upstream.invalid": [["127.0.0.1"]]})
    guard = Guard(LOOPBACK_V4, resolve=dns)
    async with serving(app) as base:
        port = base.rsplit(":", 1)[1]
        factory = guard.http_client_factory(only_host="upstream.invalid")
        http = factory(timeout=httpx2.Timeout(5))
        url = f"http://upstream.invalid:{port}/mcp"
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            tools = await client.list_tools()
        assert sorted(t.name for t in tools.tools) == ["forecast", "temperature"]
        async with factory(timeout=httpx2.Timeout(5)) as other:
            with pytest.raises(httpx2.ConnectError):
                await other.get(base)  # another host than the one it may reach


async def test_a_rebinding_name_is_refused_once_it_points_inside_and_the_inside_sees_nothing():
    async with listening("127.0.0.1") as outside, listening("::1") as inside:
        assert inside.port != 0
        dns = Rebinder({"rebind.test": [["127.0.0.1"], ["::1"]]})
        guard = Guard(LOOPBACK_V4, resolve=dns, ttl_s=0)
        async with guard.session() as http:
            async with http.get(f"http://rebind.test:{outside.port}/") as resp:
                assert resp.status == 200
            with pytest.raises(aiohttp.ClientConnectorError):
                await http.get(f"http://rebind.test:{inside.port}/")
    assert outside.connections == 1
    assert inside.connections == 0
    assert dns.lookups == ["rebind.test", "rebind.test"]


async def test_one_refused_address_among_the_answers_refuses_the_name() -> None:
    guard = Guard(LOOPBACK_V4, resolve=Rebinder({"mixed.test": [["127.0.0.1", "10.0.0.7"]]}))
    with pytest.raises(SsrfRefused):
        await guard.addresses("mixed.test", 80)


async def test_a_name_is_resolved_once_per_ttl_and_rechecked_against_the_current_allowlist():
    dns = Rebinder({"cached.test": [["127.0.0.1"]]})
    guard = Guard(LOOPBACK_V4, resolve=dns, ttl_s=60)
    assert await guard.addresses("cached.test", 80) == ("127.0.0.1",)
    assert await guard.addresses("cached.test", 80) == ("127.0.0.1",)
    assert dns.lookups == ["cached.test"]
    guard.allow = []
    with pytest.raises(SsrfRefused):
        await guard.addresses("cached.test", 80)


async def test_address_literals_are_checked_though_aiohttp_never_resolves_them() -> None:
    async with listening("127.0.0.1") as target, listening("::1") as v6:
        async with Guard([]).session() as http:
            for url in (
                f"http://127.0.0.1:{target.port}/",
                f"http://[::1]:{v6.port}/",
                f"http://[::ffff:127.0.0.1]:{target.port}/",
            ):
                with pytest.raises(OutboundRefused):
                    await http.get(url)
        async with Guard(LOOPBACK_V4).session() as http:
            async with http.get(f"http://127.0.0.1:{target.port}/") as resp:
                assert resp.status == 200
    assert target.connections == 1 and v6.connections == 0


async def test_a_redirect_is_never_followed_and_its_target_sees_nothing() -> None:
    async with listening("127.0.0.1") as target:
        hop = (
            f"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{target.port}/x\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n"
        ).encode()
        async with listening("127.0.0.1", hop) as first, Guard(LOOPBACK_V4).session() as http:
            for method in ("GET", "POST"):
                with pytest.raises(RedirectRefused):
                    await http.request(
                        method, f"http://127.0.0.1:{first.port}/", headers={"X-Secret": "s"}
                    )
            with pytest.raises(RedirectRefused):
                await http.get(f"http://127.0.0.1:{first.port}/", allow_redirects=False)
    assert first.connections == 3
    assert target.connections == 0


async def test_the_asyncio_connection_goes_to_the_checked_address_with_no_second_lookup() -> None:
    async with listening("127.0.0.1") as target:
        dns = Rebinder({"pinned.test": [["127.0.0.1"], ["::1"]]})
        guard = Guard(LOOPBACK_V4, resolve=dns)
        done = asyncio.get_running_loop().create_future()

        class Reader(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                if not done.done():
                    done.set_result(data)

        transport, _ = await guard.create_connection(Reader, "pinned.test", target.port)
        transport.write(b"GET / HTTP/1.1\r\nHost: pinned.test\r\n\r\n")  # type: ignore[attr-defined]
        assert (await asyncio.wait_for(done, 5)).startswith(b"HTTP/1.1 200")
        transport.close()
    assert dns.lookups == ["pinned.test"]
    assert target.heads and b"Host: pinned.test" in target.heads[0]


async def test_numeric_host_forms_are_checked_as_the_address_they_name_at_connect_time() -> None:
    async with listening("127.0.0.1") as target:
        with pytest.raises(SsrfRefused):
            await Guard([]).check_url(f"http://2130706433:{target.port}/")
        with pytest.raises(SsrfRefused):
            await Guard([]).addresses("0x7f000001", target.port)
        assert await Guard(LOOPBACK_V4).addresses("0177.0.0.1", target.port) == ("127.0.0.1",)
        assert await Guard(LOOPBACK_V4).addresses("127.1", target.port) == ("127.0.0.1",)
    assert target.connections == 0
