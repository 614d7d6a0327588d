"""/api/v1/servers/{name}/secrets: header and env values set and deleted per key (MCPBox)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common import process_env
from libs.common.authn import authenticate
from libs.common.errors import NotFound, Unprocessable
from libs.common.http import json_response, no_content, parse_body
from libs.common.pagination import paginate_request
from services.registry import servers
from services.registry.context import Registry
from services.registry.schemas import HEADER_RE, KEY_RE, SecretCreate, SecretValue
from services.registry.store import secrets as secrets_store


def _iso(value: object) -> str | None:
    """RFC 3339 text."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None  # type: ignore[attr-defined]


async def list_secrets(request: Request) -> Response:
    """The server's secret keys (never values)."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn:
        server = await servers.writable(conn, principal, ref)
        rows = await secrets_store.list_secrets(conn, [server["id"]])
    items = [
        {
            "key": r["key"],
            "kind": r["kind"],
            "key_id": r["key_id"],
            "created_at": _iso(r["created_at"]),
            "updated_at": _iso(r["updated_at"]),
        }
        for r in rows
    ]
    return json_response(paginate_request(request, items))


async def _set(request: Request, key: str, body: SecretValue, status: int) -> Response:
    """Seal and store one value; the server is updated (event) and its version bumped."""
    principal = await authenticate(request)
    ref = request.path_params["name"]
    pattern = HEADER_RE if body.kind == "header" else KEY_RE
    if not pattern.match(key) or any(c in body.value for c in "\r\n\x00"):
        raise Unprocessable(
            "The secret is invalid.",
            details={"fields": {"key": f"not a valid {body.kind} name or value"}},
        )
    if body.kind == "env" and process_env.is_refused(key):
        raise Unprocessable(
            "The secret is invalid.",
            details={"fields": {"key": "steers a loader or interpreter and may not be set"}},
        )
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn, conn.transaction():
        server = await servers.writable(conn, principal, ref)
        await servers.store_secrets(
            reg, conn, server["id"], body.kind, {key: body.value}, replace=False
        )
        await servers.touch(
            reg, conn, server, ["headers" if body.kind == "header" else "env"], principal.id
        )
    return json_response({"key": key, "kind": body.kind, "set": True}, status)


async def create_secret(request: Request) -> Response:
    """Create a secret (a placeholder when no value is given)."""
    body = await parse_body(request, SecretCreate)
    return await _set(request, body.key, body, 201)


async def put_secret(request: Request) -> Response:
    """Set a secret's value."""
    body = await parse_body(request, SecretValue)
    return await _set(request, request.path_params["key"], body, 200)


async def delete_secret(request: Request) -> Response:
    """Delete a secret (`?kind=env|header`, default both)."""
    principal = await authenticate(request)
    ref, key = request.path_params["name"], request.path_params["key"]
    kind = request.query_params.get("kind")
    if kind not in (None, "env", "header"):
        raise Unprocessable("Invalid kind.", details={"fields": {"kind": "must be env or header"}})
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn, conn.transaction():
        server = await servers.writable(conn, principal, ref)
        if not await secrets_store.delete_secret(conn, server["id"], kind, key):
            raise NotFound(f"No secret {key!r} on {server['name']!r}.", details={"key": key})
        await servers.touch(reg, conn, server, ["secrets"], principal.id)
    return no_content()


routes = [
    Route("/api/v1/servers/{name}/secrets", list_secrets, methods=["GET"]),
    Route("/api/v1/servers/{name}/secrets", create_secret, methods=["POST"]),
    Route("/api/v1/servers/{name}/secrets/{key}", put_secret, methods=["PUT"]),
    Route("/api/v1/servers/{name}/secrets/{key}", delete_secret, methods=["DELETE"]),
]
