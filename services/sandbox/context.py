"""The typed request context of the sandbox's routes: the runtime the app's lifespan set up."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from services.sandbox.runtime import Runtime


def runtime_of(conn: HTTPConnection) -> Runtime:
    """The sandbox's runtime (pool, bus, settings, processes, egress) serving a request or a
    WebSocket."""
    rt = conn.state.runtime
    assert isinstance(rt, Runtime)
    return rt
