"""Input no text column can hold, and digits that are not ASCII: a 4xx at the edge, never a 500."""

from __future__ import annotations

import httpx
import pydantic
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from libs.common.errors import EXCEPTION_HANDLERS
from libs.common.http import RequestContextMiddleware, parse_body


class Body(pydantic.BaseModel):
    name: str
    tags: list[str] = []
    extra: dict[str, str] = {}


async def echo(request: Request) -> JSONResponse:
    body = await parse_body(request, Body)
    return JSONResponse(body.model_dump())


def client() -> httpx.AsyncClient:
    app = RequestContextMiddleware(
        Starlette(
            routes=[Route("/echo", echo, methods=["POST"])], exception_handlers=EXCEPTION_HANDLERS
        ),
        service="test",
        max_body_bytes=1024,
        instance="test-1",
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_nul_anywhere_in_the_body_is_a_422_naming_the_field() -> None:
    async with client() as c:
        cases = {
            '{"name": "a\\u0000b"}': "name",
            '{"name": "a", "tags": ["x", "\\u0000"]}': "tags.1",
            '{"name": "a", "extra": {"k\\u0000": "v"}}': "extra.k\x00",
        }
        for raw, field in cases.items():
            resp = await c.post("/echo", content=raw, headers={"content-type": "application/json"})
            assert resp.status_code == 422, raw
            assert list(resp.json()["error"]["details"]["fields"]) == [field]
        # an escaped backslash before "u0000" is text, not NUL
        fine = await c.post("/echo", json={"name": "a\\u0000b"})
    assert fine.status_code == 200 and fine.json()["name"] == "a\\u0000b"


async def test_a_content_length_of_non_ascii_digits_is_not_a_500() -> None:
    async with client() as c:
        resp = await c.post("/echo", content=b'{"name": "a"}', headers={"content-length": b"\xb9"})
    assert resp.status_code < 500


async def test_a_client_gone_while_its_body_is_read_is_logged_as_such_not_as_a_fault(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = Starlette(  # wired as build_app wires it
        routes=[Route("/echo", echo, methods=["POST"])],
        middleware=[
            Middleware(
                RequestContextMiddleware, service="test", max_body_bytes=1024, instance="t-1"
            )
        ],
    )
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/echo",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"40")],
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    out = capsys.readouterr().out
    assert sent == []  # nobody to answer
    assert "client_disconnected" in out
    assert "unhandled_exception" not in out
