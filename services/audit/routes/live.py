"""WebSockets: /ws/events (authenticated channels) and /ws/health_status (public health map)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import orjson
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from libs.common.authn import Principal
from libs.common.errors import ApiError
from libs.common.trusted_hosts import refuse_websocket_origin
from services.audit.context import context_of
from services.audit.live import ADMIN_CHANNELS, CHANNELS, SLOW_CLOSE_CODE, Client

AUTH_CLOSE_CODE = 4401


async def _origin_refused(ws: WebSocket) -> bool:
    """Another site's page may not open these sockets (checked before the handshake ends)."""
    settings = context_of(ws).settings
    return await refuse_websocket_origin(ws, settings.public_url, settings.allowed_origins)


async def _principal(ws: WebSocket) -> Principal | None:
    """From the session cookie or bearer header, else the first message `{"type":"auth"}`."""
    verifier = context_of(ws).verifier
    token = ws.cookies.get(verifier.cookies.session)
    auth = ws.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        token = auth[7:]
    if token is None:
        try:
            async with asyncio.timeout(context_of(ws).settings.ws_auth_timeout_s):
                first = orjson.loads(await ws.receive_text())
        except (TimeoutError, orjson.JSONDecodeError, WebSocketDisconnect, KeyError):
            return None
        if not isinstance(first, dict) or first.get("type") != "auth":
            return None
        token = str(first.get("token") or "")
    try:
        return await verifier.verify(token)
    except ApiError:
        return None


async def _writer(ws: WebSocket, client: Client) -> None:
    """Send queued messages; close with 4008 when the client fell too far behind."""
    slow = asyncio.create_task(client.slow.wait())
    try:
        while True:
            get = asyncio.create_task(client.queue.get())
            done, _ = await asyncio.wait({get, slow}, return_when=asyncio.FIRST_COMPLETED)
            if slow in done:
                get.cancel()
                await ws.close(SLOW_CLOSE_CODE, "slow consumer: queue full")
                return
            await ws.send_text(get.result().decode())
    finally:
        slow.cancel()


async def _handle(ws: WebSocket, client: Client, msg: dict) -> None:
    """Answer one client message: subscribe, unsubscribe, ping."""
    kind = msg.get("type")
    if kind == "ping":
        client.offer({"type": "pong", "id": msg.get("id")})
    elif kind in ("subscribe", "unsubscribe"):
        channel = msg.get("channel")
        filters = msg.get("filters") or {}
        if channel not in CHANNELS or not isinstance(filters, dict):
            client.offer({"type": "error", "code": "VALIDATION_ERROR",
                          "message": f"channel must be one of {', '.join(CHANNELS)}"})  # fmt: skip
            return
        assert client.principal is not None
        if channel in ADMIN_CHANNELS and not client.principal.is_platform_admin:
            message = "Only a platform admin may subscribe to this channel."
            client.offer({"type": "error", "code": "FORBIDDEN", "channel": channel,
                          "message": message})  # fmt: skip
            return
        if kind == "subscribe":
            client.subscriptions[channel] = filters
        else:
            client.subscriptions.pop(channel, None)
        client.offer({"type": f"{kind}d", "channel": channel, "filters": filters})
        hub = context_of(ws).hub
        if kind == "subscribe" and channel == "health" and hub.health is not None:
            data = hub.health_for(client, hub.health)
            client.offer({"type": "health", "channel": "health", "data": data})
    else:
        client.offer({"type": "error", "code": "VALIDATION_ERROR",
                      "message": "type must be subscribe, unsubscribe or ping"})  # fmt: skip


async def events_ws(ws: WebSocket) -> None:
    """Authenticate, then relay the subscribed channels the principal may see."""
    if await _origin_refused(ws):
        return
    await ws.accept()
    principal = await _principal(ws)
    if principal is None:
        await ws.send_text('{"type":"error","code":"UNAUTHENTICATED"}')
        await ws.close(AUTH_CLOSE_CODE, "authentication required")
        return
    hub = context_of(ws).hub
    client = hub.register(principal)
    who = {"kind": principal.kind, "id": principal.id, "name": principal.name}
    client.offer({"type": "authenticated", "principal": who, "channels": list(CHANNELS)})

    async def on_text(text: str) -> None:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            msg = {}
        await _handle(ws, client, msg if isinstance(msg, dict) else {})

    await _serve(ws, client, on_text)


async def _ignore(text: str) -> None:
    """Health clients have nothing to say."""


async def _serve(ws: WebSocket, client: Client, on_text: Callable[[str], Awaitable[None]]) -> None:
    """Write the client's queue while reading its messages, until either side ends."""
    writer = asyncio.create_task(_writer(ws, client))
    try:
        while not writer.done():
            receive = asyncio.create_task(ws.receive_text())
            done, _ = await asyncio.wait({receive, writer}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                break
            await on_text(receive.result())
    except WebSocketDisconnect:
        pass
    finally:
        context_of(ws).hub.unregister(client)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


async def health_status_ws(ws: WebSocket) -> None:
    """The health map on connect and on every change (public; no secrets)."""
    if await _origin_refused(ws):
        return
    await ws.accept()
    hub = context_of(ws).hub
    client = hub.register(None, health_only=True)
    data = hub.health_for(client, await hub.health_map())  # no server names for the public
    client.offer({"type": "health", "channel": "health", "data": data})
    await _serve(ws, client, _ignore)


routes = [
    WebSocketRoute("/ws/events", events_ws),
    WebSocketRoute("/ws/health_status", health_status_ws),
]
