"""Change summaries: a refresh's tool changes told in one `server.updated`, not one event each."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import orjson

from libs.common import events as ev
from services.registry import review

# the per-tool detail one event carries at most: a listing too large for one event (NATS refuses
# messages over 1 MB) is told in several, each with the whole count and a part of the detail
MAX_DETAIL_BYTES = 256 * 1024


def tool_item(change: review.ToolChange, fingerprint: str | None, routable: bool) -> dict[str, Any]:
    """What a summary says of one changed tool (the fields of the tool event it stands for)."""
    return {
        "tool": change.name,
        "change": change.kind,
        "state": change.state,
        "routable": routable,
        "fingerprint": fingerprint,
        "flags": list(change.flags),
    }


def with_tools(
    payload: ev.ServerChanged, items: list[dict[str, Any]] | None
) -> list[ev.ServerChanged]:
    """`payload` carrying the summary of `items`, split so no event carries too much detail.

    Itself alone when there are no items; no event carries more than MAX_DETAIL_BYTES of
    detail."""
    if not items:
        return [payload]
    counts = dict(Counter(item["change"] for item in items))
    parts: list[list[dict[str, Any]]] = [[]]
    size = 0
    for item in items:
        item_size = len(orjson.dumps(item))
        if parts[-1] and size + item_size > MAX_DETAIL_BYTES:
            parts.append([])
            size = 0
        parts[-1].append(item)
        size += item_size
    return [dataclasses.replace(payload, tools=counts, tool_changes=part) for part in parts]
