"""The typed request context of the sandbox's routes: the runtime the app's lifespan set up."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from services.sandbox.runtime import Runtime


def runtime_of(conn: HTTPConnection) -> Runtime:
    """The sandbox's runtime serving a request or a WebSocket.

    It holds the pool, bus, settings, processes and egress."""
    rt = conn.state.runtime
    assert isinstance(rt, Runtime)
    return rt
