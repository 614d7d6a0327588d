"""/api/v1/settings: the admin config, documented per key (platform admins only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate, require_platform_admin
from libs.common.http import json_response, parse_body
from services.registry import config, config_keys, rotation
from services.registry.context import Registry
from services.registry.schemas import SettingValue


async def get_config(request: Request) -> Response:
    """Every setting (secrets masked) with its documentation."""
    require_platform_admin(await authenticate(request))
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn:
        values = await config.masked(reg, conn)
    keys = {name: {"secret": key.secret, "doc": key.doc} for name, key in config_keys.KEYS.items()}
    return json_response({"settings": values, "keys": keys})


async def put_config_value(request: Request) -> Response:
    """Set one setting (`{"value": ...}`), validated per key."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    body = await parse_body(request, SettingValue)
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn, conn.transaction():
        out = await config.put(reg, conn, request.path_params["key"], body.value, principal.id)
    return json_response(out)


async def reencrypt_secrets(request: Request) -> Response:
    """Rewrite every sealed value under the current master key (after adding a new first key)."""
    require_platform_admin(await authenticate(request))
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn, conn.transaction():
        out = await rotation.reencrypt(reg, conn)
    return json_response(out)


routes = [
    Route("/api/v1/settings/secrets/reencrypt", reencrypt_secrets, methods=["POST"]),
    Route("/api/v1/settings", get_config, methods=["GET"]),
    Route("/api/v1/settings/{key}", put_config_value, methods=["PUT"]),
]
