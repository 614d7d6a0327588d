"""The egress proxy: HTTP CONNECT / absolute-URI HTTP on a Unix socket per sandbox, allowlisted.

A destination passes two checks: its host is on the server's allowlist, and every address the
proxy resolves it to is one sandboxes may reach (`addresses.AddressGuard`). The proxy then
connects to an address it checked, never to the name again (no DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from services.sandbox import metrics
from services.sandbox.addresses import AddressGuard, parse_address
from services.sandbox.allowlist import canonical_host

log = structlog.get_logger()

HEAD_LIMIT = 16 * 1024
CONNECT_TIMEOUT_S = 10.0
NOT_ALLOWLISTED = "not in the allowlist"

AllowCheck = Callable[[str, str, int], Awaitable[bool]]
RefusalHook = Callable[[str, str, int, str], Awaitable[None]]
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolve(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver, in its order, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%")[0]
        if text not in found:
            found.append(text)
    return found


def parse_target(line: str) -> tuple[str, str, int, str] | None:
    """(method, host, port, origin-form path) from a proxy request line, or None."""
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return None
    method, target, _ = parts
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        if not host or not (port.isascii() and port.isdigit()):
            return None
        return method, host.strip("[]"), int(port), ""
    if not target.startswith("http://"):
        return None
    rest = target[len("http://") :]
    authority, slash, path = rest.partition("/")
    host, colon, port = authority.rpartition(":") if ":" in authority else (authority, "", "80")
    if not host or not (port.isascii() and port.isdigit()):
        return None
    return method, host.strip("[]"), int(port), "/" + path if slash else "/"


class EgressProxy:
    """One Unix socket per sandboxed process; each connection checked against its server's list."""

    def __init__(
        self,
        allow: AllowCheck,
        refused: RefusalHook,
        guard: AddressGuard,
        resolve: Resolver = system_resolve,
    ) -> None:
        self.allow = allow
        self.refused = refused
        self.guard = guard
        self.resolve = resolve
        self._servers: dict[str, tuple[asyncio.AbstractServer, Path]] = {}

    async def open_socket(self, key: str, server: str, path: Path, uid: int | None) -> Path:
        """Listen on `path` for the process `key` (of `server`); owned by the sandbox uid."""
        await self.close_socket(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        srv = await asyncio.start_unix_server(
            lambda r, w: self._handle(server, r, w), path=str(path), limit=HEAD_LIMIT
        )
        if uid is not None:
            os.chown(path, uid, uid)
        path.chmod(0o600)
        self._servers[key] = (srv, path)
        return path

    async def close_socket(self, key: str) -> None:
        """Stop listening for `key`."""
        entry = self._servers.pop(key, None)
        if entry is None:
            return
        srv, path = entry
        srv.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(srv.wait_closed(), 2)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    async def close(self) -> None:
        """Close every socket."""
        for key in list(self._servers):
            await self.close_socket(key)

    async def _handle(
        self, server: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one proxied connection."""
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        target = parse_target(lines[0])
        if target is None:
            metrics.egress("bad_request")
            await _answer(writer, 400, "Bad Request")
            return
        method, raw_host, port, path = target
        host = canonical_host(raw_host)
        if not await self.allow(server, host, port):
            metrics.egress("not_allowlisted")
            await _answer(writer, 403, "Forbidden", b"egress to this host is not allowed\n")
            await self.refused(server, host, port, NOT_ALLOWLISTED)
            return
        addresses, problem = await self.addresses(host, port)
        if problem is not None:
            metrics.egress("address_refused")
            await _answer(writer, 403, "Forbidden", f"egress refused: {problem}\n".encode())
            await self.refused(server, host, port, problem)
            return
        metrics.egress("allowed")
        upstream = await _connect(addresses, port)
        if upstream is None:
            await _answer(writer, 502, "Bad Gateway")
            return
        up_reader, up_writer = upstream
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith("proxy-")]
            first = f"{method} {path} {lines[0].rsplit(' ', 1)[1]}"
            up_writer.write(("\r\n".join([first, *kept]) + "\r\n\r\n").encode("latin-1"))
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def addresses(self, host: str, port: int) -> tuple[list[str], str | None]:
        """Resolve once and check every address: (addresses, None) or ([], why refused)."""
        await self.guard.refresh()
        literal = parse_address(host)
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                found = await self.resolve(host, port)
            except OSError:
                return [], "the host does not resolve"
        if not found:
            return [], "the host has no address"
        for text in found:
            try:
                problem = self.guard.problem(ipaddress.ip_address(text))
            except ValueError:
                problem = "the resolver answered something that is not an address"
            if problem is not None:
                return [], f"{host} resolves to a {problem}" if literal is None else problem
        return found, None


async def _connect(
    addresses: list[str], port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """Connect to the first checked address that answers (never to the name again)."""
    for address in addresses:
        try:
            return await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError):
            continue
    return None


async def _answer(writer: asyncio.StreamWriter, status: int, text: str, body: bytes = b"") -> None:
    """A short HTTP answer, then close."""
    head = f"HTTP/1.1 {status} {text}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    writer.write(head.encode() + body)
    with contextlib.suppress(Exception):
        await writer.drain()
    writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
