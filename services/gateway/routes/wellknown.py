"""OAuth protected-resource metadata for MCP clients (RFC 9728)."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.http import json_response


async def protected_resource(request: Request) -> Response:
    """Where MCP clients find the authorization server for this resource."""
    # the public URL (SWITCHBOARD_PUBLIC_URL), not the Host header: behind TLS termination the
    # request's scheme would be wrong, and the resource must equal OAuth tokens' audience
    base = request.app.state.settings.public_url.rstrip("/")
    return json_response(
        {
            "resource": f"{base}/mcp",
            "authorization_servers": [base],
            "bearer_methods_supported": ["header"],
            "scopes_supported": ["mcp"],
        }
    )


routes = [
    Route("/.well-known/oauth-protected-resource", protected_resource, methods=["GET"]),
    Route("/.well-known/oauth-protected-resource/mcp", protected_resource, methods=["GET"]),
]
