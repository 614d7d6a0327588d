"""Authentication of a request: its credential, the CSRF check, the Principal and the checks on it.

The Principal and grants are in `principal.py`, the cookie names in `cookies.py`, the Verifier in
`verifier.py`; their public names are re-exported here, the one import services need.
"""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection

from libs.common.cookies import (
    CSRF_COOKIE,
    HOST_PREFIX,
    SESSION_COOKIE,
    CookieNames,
    cookie_names,
    cookies_of,
)
from libs.common.errors import Forbidden, NotFound, Unauthenticated
from libs.common.principal import PERMISSIONS, ROLE_ORDER, Grant, Principal, ServerRef
from libs.common.verifier import (
    JWT_ALGORITHMS,
    JWT_AUDIENCE,
    JWT_ISSUER,
    OPAQUE_PREFIXES,
    Verifier,
    canonical_resource,
    hash_token,
)

__all__ = [
    "CSRF_COOKIE",
    "HOST_PREFIX",
    "JWT_ALGORITHMS",
    "JWT_AUDIENCE",
    "JWT_ISSUER",
    "OPAQUE_PREFIXES",
    "PERMISSIONS",
    "ROLE_ORDER",
    "SESSION_COOKIE",
    "CookieNames",
    "Grant",
    "Principal",
    "ServerRef",
    "Verifier",
    "authenticate",
    "canonical_resource",
    "check_csrf",
    "constant_time_equal",
    "cookie_names",
    "cookies_of",
    "credential_from",
    "hash_token",
    "optional_principal",
    "require_grant",
    "require_org_role",
    "require_platform_admin",
    "require_scope",
]

CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def credential_from(conn: HTTPConnection) -> tuple[str | None, bool]:
    """The bearer credential of a request and whether it came from the session cookie."""
    auth = conn.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip(), False
    api_key = conn.headers.get("x-api-key")
    if api_key:
        return api_key.strip(), False
    cookie = conn.cookies.get(cookies_of(conn).session)
    if cookie:
        return cookie, True
    if conn.scope.get("type") == "websocket":  # browsers cannot set headers on a WebSocket
        token = conn.query_params.get("token")  # nginx's access log redacts it
        if token:
            return token.strip(), False
    return None, False


def check_csrf(conn: HTTPConnection) -> None:
    """Cookie-authenticated state changes must echo the CSRF cookie in X-CSRF-Token."""
    method = conn.scope.get("method", "GET")
    if method in SAFE_METHODS:
        return
    cookie = conn.cookies.get(cookies_of(conn).csrf)
    header = conn.headers.get(CSRF_HEADER)
    if not cookie or not header or not constant_time_equal(cookie, header):
        raise Forbidden("A state-changing request made with the session cookie needs X-CSRF-Token.")


def constant_time_equal(a: str, b: str) -> bool:
    """Compare two secrets in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())


async def authenticate(conn: HTTPConnection) -> Principal:
    """The request's principal (cached on the request), or 401."""
    # the state's dict, read directly: a miss on `conn.state` raises and catches an error
    cached = conn.scope.get("state", {}).get("principal")
    if cached is not None:
        return cached
    token, from_cookie = credential_from(conn)
    if token is None:
        raise Unauthenticated(
            "Authentication is required: send Authorization: Bearer <token> or X-API-Key.",
            headers={"WWW-Authenticate": 'Bearer realm="switchboard"'},
        )
    if from_cookie:
        check_csrf(conn)
    principal = await conn.state.verifier.verify(token)
    conn.state.principal = principal
    return principal


async def optional_principal(conn: HTTPConnection) -> Principal | None:
    """The principal when a credential was sent, else None (a bad credential is still 401)."""
    token, _ = credential_from(conn)
    return None if token is None else await authenticate(conn)


def require_platform_admin(principal: Principal) -> None:
    """403 unless a platform admin."""
    if not principal.is_platform_admin:
        raise Forbidden("Only a platform admin may do this.")


def require_org_role(principal: Principal, org_id: str, minimum: str = "admin") -> None:
    """403 unless the principal's role in the org is at least `minimum`."""
    if not principal.has_org_role(org_id, minimum):
        raise Forbidden(
            f"This needs the {minimum} role in the organisation.",
            details={"org": org_id, "required_role": minimum},
        )


def require_scope(principal: Principal, scope: str) -> None:
    """403 unless the token carries `scope` (users: unless platform admin)."""
    if not principal.has_scope(scope):
        raise Forbidden(f"This needs the scope {scope!r}.", details={"required_scope": scope})


def require_grant(
    principal: Principal, permission: str, server: ServerRef, tool: str | None = None
) -> None:
    """404 when no grant lets the principal see the server, 403 when one lacks `permission`.

    Another org's server is never confirmed to exist."""
    if not principal.permits("read", server):
        raise NotFound(f"Server {server.name!r} not found.", details={"server": server.name})
    if not principal.permits(permission, server, tool):
        details = {"permission": permission, "server": server.name}
        if tool is not None:
            details["tool"] = tool
        raise Forbidden(f"No grant gives {permission} on {server.name!r}.", details=details)
