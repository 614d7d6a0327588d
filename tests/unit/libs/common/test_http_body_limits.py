"""Per-route body limits: a route given a larger limit takes larger bodies, others keep the cap."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from libs.common.errors import EXCEPTION_HANDLERS
from libs.common.http import RequestContextMiddleware

UPLOAD = r"^/upload/[^/]+$"


async def size(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


def middleware() -> RequestContextMiddleware:
    app = Starlette(
        routes=[
            Route("/upload/{id}", size, methods=["POST"]),
            Route("/echo", size, methods=["POST"]),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    return RequestContextMiddleware(
        app, service="test", max_body_bytes=1024, instance="t-1", body_limits={UPLOAD: 4096}
    )


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware()), base_url="http://t")


def test_the_override_applies_only_to_paths_its_regex_matches() -> None:
    limits = middleware()
    assert limits.body_limit("/upload/a") == 4096
    assert limits.body_limit("/upload/a/b") == 1024
    assert limits.body_limit("/echo") == 1024


async def test_a_route_with_a_larger_limit_takes_a_body_over_the_cap() -> None:
    async with client() as api:
        resp = await api.post("/upload/a", content=b"x" * 3000)
    assert resp.status_code == 200 and resp.json() == {"size": 3000}


@pytest.mark.parametrize(("path", "size"), [("/upload/a", 5000), ("/echo", 2000)])
async def test_a_body_over_its_routes_limit_is_a_413_naming_the_limit(path: str, size: int) -> None:
    async with client() as api:
        resp = await api.post(path, content=b"x" * size)
    assert resp.status_code == 413
    error = resp.json()["error"]
    assert error["code"] == "PAYLOAD_TOO_LARGE"
    assert error["details"]["limit"] == (4096 if path.startswith("/upload") else 1024)


async def test_a_chunked_body_over_the_routes_limit_is_a_413() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(6):
            yield b"x" * 1000

    async with client() as api:
        resp = await api.post("/upload/a", content=chunks())
    assert resp.status_code == 413
    assert resp.json()["error"]["details"]["limit"] == 4096
