"""/api/v1/settings: the admin config, documented per key (platform admins only)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate, require_platform_admin
from libs.common.errors import Unprocessable
from libs.common.http import json_response, parse_body, read_json
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
    name = request.path_params["key"]
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn, conn.transaction():
        if name == "smtp":  # its password is kept apart, as the secret smtp_password
            stored = await config.put_many(reg, conn, {name: body.value}, principal.id)
            out = {"key": name, "value": stored["settings"][name]}
        else:
            out = await config.put(reg, conn, name, body.value, principal.id)
    return json_response(out)


async def put_config(request: Request) -> Response:
    """Set several settings at once (`{key: value, ...}`, the mcphub seed's `PUT /api/config`)."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    body = await read_json(request)
    if not isinstance(body, dict) or not body:
        raise Unprocessable(
            "The body must be an object of settings.", details={"fields": {"body": "object"}}
        )
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn, conn.transaction():
        out = await config.put_many(reg, conn, body, principal.id)
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
    Route("/api/v1/settings", put_config, methods=["PUT", "PATCH"]),
    Route("/api/v1/settings/{key}", put_config_value, methods=["PUT"]),
    # the mcphub seed's /api/config
    Route("/api/v1/config", get_config, methods=["GET"]),
    Route("/api/v1/config", put_config, methods=["PUT", "PATCH"]),
]
