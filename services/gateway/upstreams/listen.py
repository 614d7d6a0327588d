"""An upstream `subscriptions/listen` stream (2026-07-28), as an iterator of its messages.

Resource updates (`resource_watch.py`) and task notifications (`task_watch.py`) each keep such a
stream open toward 2026-07-28 upstreams; this is the request they share.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog
from mcp_types import CLIENT_CAPABILITIES_META_KEY
from mcp_types.version import LATEST_MODERN_VERSION

from services.gateway.upstreams.streamable_http import HttpUpstream
from services.gateway.upstreams.transport import json_messages, sse_events, with_modern_meta

log = structlog.get_logger()


class ListenRefused(Exception):  # noqa: N818 - the upstream's answer, not a failure here
    """The upstream answered the listen request without a stream (an error, e.g. -32021)."""


async def listen_messages(
    upstream: HttpUpstream,
    notifications: dict[str, Any],
    request_id: str,
    client_capabilities: dict[str, Any] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """The JSON-RPC messages of one upstream listen stream, until it ends.

    Use with `contextlib.aclosing`, so the stream closes as soon as the reader stops."""
    meta = (
        {} if client_capabilities is None else {CLIENT_CAPABILITIES_META_KEY: client_capabilities}
    )
    params = {"notifications": notifications, "_meta": meta}
    params = with_modern_meta(params, upstream.protocol or LATEST_MODERN_VERSION)
    body = {"jsonrpc": "2.0", "id": request_id, "method": "subscriptions/listen", "params": params}
    headers = upstream.headers("subscriptions/listen", params)
    async with upstream.http.post(
        upstream.server.url or "", data=orjson.dumps(body), headers=headers
    ) as resp:
        if not resp.headers.get("content-type", "").startswith("text/event-stream"):
            raise ListenRefused(f"listen: HTTP {resp.status}")
        events = sse_events(resp, upstream.posts.max_body_bytes)
        async for msg in json_messages(events, upstream.server.name, "listen_stream_garbage"):
            yield msg
