"""Who may ask through an MCP endpoint: Host and Origin, credential, rate limit, the view."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from libs.common.authn import Principal, authenticate
from libs.common.errors import ApiError, Unavailable
from services.gateway.call_context import CallContext
from services.gateway.clients.sessions import SessionInfo
from services.gateway.context import context
from services.gateway.jsonrpc import (
    FORBIDDEN,
    INVALID_REQUEST,
    SESSION_NOT_FOUND,
    UNAUTHENTICATED,
    UNAVAILABLE,
    RpcFault,
)
from services.gateway.rate_limit import rate_limit


def check_origin(request: Request) -> None:
    """Refuse a Host or Origin that does not name the gateway (DNS rebinding): 403."""
    trusted = context(request).trusted_hosts
    host, origin = request.headers.get("host"), request.headers.get("origin")
    if trusted.host_refused(host):
        raise RpcFault(FORBIDDEN, "This Host is not allowed.", {"host": str(host)[:200]}, 403)
    if trusted.origin_refused(origin):
        raise RpcFault(FORBIDDEN, "This Origin is not allowed.", {"origin": str(origin)[:200]}, 403)


async def principal_of(request: Request) -> Principal:
    """Authenticate, turning the API error into a JSON-RPC one."""
    try:
        principal = await authenticate(request)  # a dict lookup once verified (Verifier)
    except Unavailable as exc:  # auth could not be asked: the credential is not known bad
        raise RpcFault(UNAVAILABLE, exc.message, {"code": exc.code}) from None
    except ApiError as exc:
        raise RpcFault(UNAUTHENTICATED, exc.message, {"code": exc.code}) from None
    await rate_limit(request, principal, context(request).limiter)
    return principal


def www_authenticate(request: Request) -> dict[str, str]:
    """The challenge pointing MCP clients at the protected-resource metadata."""
    base = str(request.base_url).rstrip("/")
    return {
        "WWW-Authenticate": f'Bearer realm="switchboard", resource_metadata="{base}'
        '/.well-known/oauth-protected-resource"'
    }


def endpoint_context(request: Request, principal: Principal) -> CallContext:
    """The call context for the path: all tools, one team's, or one server's."""
    table = context(request).table
    params = request.path_params
    if "path" in params:
        server = table.by_path.get(params["path"]) or table.servers.get(params["path"])
        # a server no grant lets the caller see (another org's) is not there for it
        if server is None or not server.routable or not table.may_read_server(principal, server):
            raise RpcFault(SESSION_NOT_FOUND, f"No server at {params['path']!r}.")
        return CallContext(principal, endpoint="/mcp/servers/{path}", server=server)
    if "team" in params:
        team = params["team"]
        if not principal.is_platform_admin and team not in principal.teams:
            # another org's team (or one the caller is not in) is not there for it
            raise RpcFault(SESSION_NOT_FOUND, f"No team {team!r} of yours.", {"team": team[:100]})
        return CallContext(principal, endpoint="/mcp/{team}", team=team)
    return CallContext(principal)


def session_of(request: Request, principal: Principal) -> SessionInfo:
    """The legacy session named by Mcp-Session-Id (400 when missing, 404 when unknown)."""
    session_id = request.headers.get("mcp-session-id")
    if not session_id:
        raise RpcFault(INVALID_REQUEST, "Missing Mcp-Session-Id: send initialize first.")
    info = context(request).sessions.open(session_id, principal)
    if info is None:
        raise RpcFault(SESSION_NOT_FOUND, "Unknown or ended session.", {"session": "not found"})
    return info


def client_name(info: Any) -> str | None:
    """`name/version` from clientInfo."""
    if not isinstance(info, dict):
        return None
    return f"{info.get('name', '')}/{info.get('version', '')}"[:120]
