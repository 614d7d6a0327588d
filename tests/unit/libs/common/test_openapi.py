"""The OpenAPI document takes its schemas from the models the handlers themselves use."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from libs.common import openapi
from libs.common.http import json_response, parse_body, query_model
from libs.common.pagination import list_query


class Inner(BaseModel):
    """A nested part."""

    flag: bool = False


class ThingIn(BaseModel):
    """A thing to create."""

    name: str = Field(min_length=1, max_length=10)
    inner: Inner | None = None


class ThingOut(BaseModel):
    """A created thing."""

    id: str


class Filter(BaseModel):
    """Query parameters."""

    level: str = "info"


async def create_thing(request: Request) -> Response:
    """Create a thing."""
    body = await _body(request)
    return json_response(ThingOut(id=body.name), 201)


async def _body(request: Request) -> ThingIn:
    """A helper the handler calls: read one level deep."""
    return await parse_body(request, ThingIn)


async def list_things(request: Request) -> Response:
    """List things."""
    query = list_query(request, sorts=("name",))
    return json_response({"items": [], "query": query.q})


async def thing_logs(request: Request) -> Response:
    """One thing's logs."""
    return json_response(query_model(request, Filter).model_dump())


ROUTES = [
    Mount(
        "/api/v1",
        routes=[
            Route("/things", create_thing, methods=["POST"]),
            Route("/things", list_things, methods=["GET"]),
            Route("/things/{thing:path}/logs", thing_logs, methods=["GET"]),
        ],
    )
]


def test_a_body_read_by_a_helper_becomes_the_request_schema_with_its_nested_models() -> None:
    doc = openapi.build("demo", "1", ROUTES)
    post = doc["paths"]["/api/v1/things"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ThingIn"}
    schemas = doc["components"]["schemas"]
    assert schemas["ThingIn"]["properties"]["name"]["maxLength"] == 10
    assert "Inner" in schemas  # nested models are components, referenced by name
    created = post["responses"]["201"]["content"]["application/json"]["schema"]
    assert created == {"$ref": "#/components/schemas/ThingOut"}


def test_list_routes_take_the_list_parameters_and_answer_a_page() -> None:
    get = openapi.build("demo", "1", ROUTES)["paths"]["/api/v1/things"]["get"]
    names = {p["name"] for p in get["parameters"]}
    assert {"page", "page_size", "sort", "order", "q"} <= names
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Page"
    )


def test_path_parameters_and_a_query_model_are_parameters() -> None:
    get = openapi.build("demo", "1", ROUTES)["paths"]["/api/v1/things/{thing}/logs"]["get"]
    params = {(p["name"], p["in"]) for p in get["parameters"]}
    assert params == {("thing", "path"), ("level", "query")}
    assert get["responses"]["default"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Error"
    )
