"""List-changed notifications: announced when what clients can list changed, not on every event."""

from __future__ import annotations

from functools import partial

from libs.common import wire
from libs.common.rpc_types import ServerView
from services.gateway.clients.sessions import Notifier
from services.gateway.clients.subscriptions import listing_digest
from services.gateway.routing_table import RoutingTable


def view(tools: list[str], status: str = "healthy") -> ServerView:
    """A snapshot server view."""
    doc = {
        "name": "calc",
        "id": "s-1",
        "path": "/calc",
        "transport": "streamable-http",
        "url": "http://calc/mcp",
        "enabled": True,
        "status": status,
        "tools": [{"name": t, "description": t, "input_schema": {"type": "object"}} for t in tools],
    }
    return wire.decode(ServerView, doc)


async def test_only_changes_clients_can_see_are_announced() -> None:
    table = RoutingTable()
    notifier = Notifier(digest=partial(listing_digest, table))
    queue = notifier.subscribe()
    table.upsert(view(["add"]))
    await notifier.tools_changed()
    first = [queue.get_nowait()["method"] for _ in range(queue.qsize())]
    table.upsert(view(["add"]))  # the same server fetched again: nothing to announce
    await notifier.tools_changed()
    same = queue.qsize()
    table.upsert(view(["add", "mul"]))
    await notifier.tools_changed()
    table.upsert(view(["add", "mul"], status="quarantined"))
    await notifier.tools_changed()
    assert first == [
        "notifications/tools/list_changed",
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
    ]
    assert same == 0
    assert queue.qsize() == 6


async def test_without_a_digest_every_change_is_announced() -> None:
    notifier = Notifier()
    queue = notifier.subscribe()
    await notifier.tools_changed()
    await notifier.tools_changed()
    assert queue.qsize() == 6
