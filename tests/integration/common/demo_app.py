"""A small service built with build_app, to test what every service gets from libs/common."""

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pydantic
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.app import build_app
from libs.common.authn import authenticate
from libs.common.errors import Conflict
from libs.common.http import json_response, parse_body
from libs.common.settings import Settings

MIGRATIONS = Path(__file__).parents[2] / "fixtures" / "common" / "migrations"


@dataclass(frozen=True)
class DemoSettings(Settings):
    service: ClassVar[str] = "demo"


class WidgetIn(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: str = pydantic.Field(min_length=1, max_length=40)
    colour: str | None = None


async def create_widget(request: Request) -> Response:
    """Create a widget."""
    body = await parse_body(request, WidgetIn)
    async with request.state.pool.acquire() as conn:
        row = await conn.fetchrow(
            "INSERT INTO demo.widgets (name, colour) VALUES ($1, $2)"
            " ON CONFLICT (name) DO NOTHING RETURNING id, name, colour",
            body.name,
            body.colour,
        )
    if row is None:
        raise Conflict(f"A widget named {body.name!r} exists.", details={"name": body.name})
    return json_response(dict(row), 201)


async def get_widget(request: Request) -> Response:
    """Return one widget."""
    return json_response({"id": request.path_params["id"]})


async def explode(request: Request) -> Response:
    """Fail unexpectedly."""
    raise RuntimeError("database password is hunter2")


async def whoami(request: Request) -> Response:
    """A protected route."""
    principal = await authenticate(request)
    return json_response(principal.to_dict())


def create_app(settings: DemoSettings) -> Starlette:
    """Build the demo app."""
    return build_app(
        settings,
        [
            Route("/api/v1/widgets", create_widget, methods=["POST"]),
            Route("/api/v1/widgets/{id:int}", get_widget, methods=["GET"]),
            Route("/api/v1/explode", explode, methods=["GET"]),
            Route("/api/v1/whoami", whoami, methods=["GET"]),
        ],
        migrations=MIGRATIONS,
    )
