"""`X-Switchboard-Instance` on every gateway response: which replica answered (scale tests, ops)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-switchboard-instance"


class InstanceHeader:
    """Pure ASGI middleware (no BaseHTTPMiddleware overhead) adding the replica's id."""

    def __init__(self, app: ASGIApp, *, instance: str) -> None:
        self.app = app
        self.header = (HEADER, instance.encode("latin-1", "replace"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = self.header

        async def send_with_instance(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_instance)
