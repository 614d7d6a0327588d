"""The harness tests and benchmarks share: free ports, an app served in-process, settings."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from libs.common.settings import Settings
from libs.devstack.harness import free_port, serving, settings_for


async def hello(request: Request) -> PlainTextResponse:
    """Answer a greeting."""
    return PlainTextResponse("hello")


def test_a_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


async def test_serving_runs_the_app_and_stops_it_after() -> None:
    async with serving(Starlette(routes=[Route("/", hello)])) as url:
        async with aiohttp.ClientSession() as http, http.get(url) as resp:
            assert await resp.text() == "hello"
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # released


async def test_serving_reports_an_app_whose_lifespan_fails() -> None:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        raise OSError("no database")
        yield  # pragma: no cover

    with pytest.raises(RuntimeError, match="failed to start"):
        async with serving(Starlette(lifespan=lifespan)):
            pass  # pragma: no cover


def test_settings_for_points_a_service_at_the_test_database_and_namespace() -> None:
    settings = settings_for(
        Settings,
        pg_url="postgresql://db/x",
        nats_url="nats://n:1",
        namespace="t1",
        LOG_LEVEL="info",
    )
    assert settings.database_url == "postgresql://db/x"
    assert settings.nats_url == "nats://n:1"
    assert settings.namespace == "t1"
    assert settings.log_level == "info"
