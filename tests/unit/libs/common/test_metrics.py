"""Metrics label requests by the route template the router matched, never by raw path."""

from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, Router

from libs.common.metrics import UNMATCHED, matched_template


async def endpoint(request):
    return PlainTextResponse("ok")


ROUTER = Router(
    [
        Route("/api/v1/servers/{name}", endpoint, methods=["GET"]),
        Mount("/api/v1/things", routes=[Route("/{id}/parts", endpoint)]),
    ],
    redirect_slashes=False,
)


async def template_of(path: str, method: str = "GET") -> str:
    """Route `path` through a real router, then read the template it left in the scope."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": [],
             "query_string": b""}  # fmt: skip

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        pass

    await ROUTER(scope, receive, send)
    return matched_template(scope, "")


async def test_a_path_maps_to_its_template() -> None:
    assert await template_of("/api/v1/servers/github") == "/api/v1/servers/{name}"


async def test_mounted_routes_keep_their_prefix() -> None:
    assert await template_of("/api/v1/things/42/parts") == "/api/v1/things/{id}/parts"


async def test_unknown_paths_share_one_label() -> None:
    assert await template_of("/random/123") == UNMATCHED


async def test_a_wrong_method_still_names_the_route() -> None:
    assert await template_of("/api/v1/servers/x", "DELETE") == "/api/v1/servers/{name}"
