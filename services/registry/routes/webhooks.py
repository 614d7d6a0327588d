"""/api/v1/webhooks/{github,gitlab,bitbucket,stripe}: signed deliveries (docs/CATALOG.md)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.http import json_response
from services.registry import webhooks
from services.registry.context import Registry


def _reg(request: Request) -> Registry:
    """The registry's shared parts."""
    return request.state.registry


async def receive_webhook(request: Request) -> Response:
    """Verify one delivery's signature, then handle it once (no user credential: the signature)."""
    provider = request.path_params["provider"]
    raw = await request.body()
    return json_response(await webhooks.receive(_reg(request), provider, request.headers, raw))


routes = [Route("/api/v1/webhooks/{provider}", receive_webhook, methods=["POST"])]
