"""/api/v1/mcps/{mcpId}/versions/{versionId}: latest snapshot, controls, scores, rescan."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate, optional_principal
from libs.common.http import json_response
from services.registry.catalog import snapshots
from services.registry.catalog.rate import public
from services.registry.context import Registry

PREFIX = "/api/v1/mcps/{mcp}/versions/{version}"


def _reg(request: Request) -> Registry:
    """The registry's shared parts."""
    return request.state.registry


def _refs(request: Request) -> tuple[str, str]:
    """The MCP and version references of the path."""
    return request.path_params["mcp"], request.path_params["version"]


@public
async def latest_snapshot(request: Request) -> Response:
    """The version's newest snapshot: four scores, findings by severity, toolchain versions."""
    principal = await optional_principal(request)
    version, snapshot, _ = await snapshots.latest(_reg(request), principal, *_refs(request))
    return json_response(snapshots.snapshot_view(version, snapshot))


@public
async def controls(request: Request) -> Response:
    """The latest snapshot's control results with pass/fail counts."""
    principal = await optional_principal(request)
    _, _, rows = await snapshots.latest(_reg(request), principal, *_refs(request))
    return json_response(snapshots.controls_view(rows))


@public
async def scores(request: Request) -> Response:
    """The latest snapshot's scores with weights and breakdowns, and the grade."""
    principal = await optional_principal(request)
    _, snapshot, _ = await snapshots.latest(_reg(request), principal, *_refs(request))
    return json_response(snapshots.scores_view(snapshot))


async def rescan(request: Request) -> Response:
    """Queue a new scan of the version (202)."""
    principal = await authenticate(request)
    body = await snapshots.rescan(_reg(request), principal, *_refs(request))
    return json_response(body, 202)


routes = [
    Route(f"{PREFIX}/snapshot/latest", latest_snapshot, methods=["GET"]),
    Route(f"{PREFIX}/controls", controls, methods=["GET"]),
    Route(f"{PREFIX}/scores", scores, methods=["GET"]),
    Route(f"{PREFIX}/scan", rescan, methods=["POST"]),
]
