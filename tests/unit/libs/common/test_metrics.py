"""Metrics label requests by route template, never by raw path."""

from starlette.routing import Mount, Route

from libs.common.metrics import UNMATCHED, route_template


async def endpoint(request):  # pragma: no cover - never called
    return None


ROUTES = [
    Route("/api/v1/servers/{name}", endpoint, methods=["GET"]),
    Mount("/api/v1/things", routes=[Route("/{id}/parts", endpoint)]),
]


def scope(path: str, method: str = "GET") -> dict:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def test_a_path_maps_to_its_template() -> None:
    assert route_template(ROUTES, scope("/api/v1/servers/github")) == "/api/v1/servers/{name}"


def test_mounted_routes_keep_their_prefix() -> None:
    assert route_template(ROUTES, scope("/api/v1/things/42/parts")) == "/api/v1/things/{id}/parts"


def test_unknown_paths_share_one_label() -> None:
    assert route_template(ROUTES, scope("/random/123")) == UNMATCHED


def test_a_wrong_method_still_names_the_route() -> None:
    assert route_template(ROUTES, scope("/api/v1/servers/x", "DELETE")) == "/api/v1/servers/{name}"
