"""The catalog's list parameters (the seed's `limit`/`offset`, ours too) and list bodies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from libs.common.errors import Unprocessable
from libs.common.pagination import ListQuery, list_query, page_body

BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class Window:
    """A validated page request: our ListQuery and the exact row offset."""

    query: ListQuery
    offset: int
    filters: dict[str, Any]

    @property
    def limit(self) -> int:
        """Rows per page."""
        return self.query.page_size


def window(request: Request, filters: Iterable[str] = ()) -> Window:
    """Parse `limit` (≤ 100) / `offset` (or page / page_size), `q`/`query` and the filters."""
    query = list_query(request, sorts=("name",), filters=filters)
    offset = query.offset
    raw = request.query_params.get("offset")
    if raw not in (None, "") and "page" not in request.query_params:
        offset = int(raw)  # list_query checked it
    chosen: dict[str, Any] = dict(query.filters)
    if "featured" in chosen:
        value = BOOLEANS.get(chosen["featured"].lower())
        if value is None:
            raise Unprocessable(
                "Invalid list parameters.", details={"fields": {"featured": "must be a boolean"}}
            )
        chosen["featured"] = value
    return Window(query, offset, chosen)


def body(items: Sequence[Any], total: int, win: Window, seed_key: str) -> dict[str, Any]:
    """Our list body, with the seed's key (`mcps`, `versions`), `limit` and `offset` beside it."""
    out = page_body(items, total, win.query)
    out[seed_key] = out["items"]
    out["limit"] = win.limit
    out["offset"] = win.offset
    return out
