"""List queries (page, page_size, sort, order, q, filters) and the DESIGN list body."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from libs.common.errors import Unprocessable

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000  # beyond any list here; keeps OFFSET well inside a bigint


@dataclass(frozen=True)
class ListQuery:
    """A validated list request; `sort` is always one of the allowed columns."""

    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    sort: str = "created_at"
    order: str = "desc"
    q: str | None = None
    filters: dict[str, str] = field(default_factory=dict)

    @property
    def offset(self) -> int:
        """Rows to skip."""
        return (self.page - 1) * self.page_size

    @property
    def order_sql(self) -> str:
        """ORDER BY clause body; safe because sort and order were checked against allowlists."""
        return f"{self.sort} {self.order.upper()}"


def list_query(
    request: Request,
    *,
    sorts: Sequence[str],
    filters: Iterable[str] = (),
    default_sort: str | None = None,
    default_order: str = "desc",
) -> ListQuery:
    """Parse and validate list parameters; a bad sort or number is 422 with field details."""
    params = request.query_params
    problems: dict[str, str] = {}
    page = _positive_int(params, "page", 1, problems)
    # `limit`/`offset` (seed APIs) are accepted as aliases of page_size/page
    page_size = _positive_int(params, "page_size", 0, problems) or _positive_int(
        params, "limit", DEFAULT_PAGE_SIZE, problems
    )
    if page_size > MAX_PAGE_SIZE:
        problems["page_size"] = f"must be at most {MAX_PAGE_SIZE}"
    if page > MAX_PAGE:
        problems["page"] = f"must be at most {MAX_PAGE}"
    if "offset" in params and "page" not in params and not problems:
        offset = _positive_int(params, "offset", 0, problems, minimum=0)
        page = offset // max(page_size, 1) + 1
    sort = params.get("sort") or default_sort or sorts[0]
    if sort not in sorts:
        problems["sort"] = f"must be one of {', '.join(sorts)}"
    order = (params.get("order") or default_order).lower()
    if order not in ("asc", "desc"):
        problems["order"] = "must be asc or desc"
    if problems:
        raise Unprocessable("Invalid list parameters.", details={"fields": problems})
    q = (params.get("q") or params.get("search") or params.get("query") or "").strip() or None
    chosen = {name: params[name] for name in filters if params.get(name) not in (None, "")}
    return ListQuery(page, page_size, sort, order, q, chosen)


def _positive_int(
    params: Mapping[str, str], name: str, default: int, problems: dict[str, str], minimum: int = 1
) -> int:
    """Read an integer parameter ≥ minimum, noting a problem when it is not one."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        problems[name] = "must be an integer"
        return default
    if value < minimum:
        problems[name] = f"must be at least {minimum}"
        return default
    if value > MAX_PAGE * MAX_PAGE_SIZE:
        problems[name] = f"must be at most {MAX_PAGE * MAX_PAGE_SIZE}"
        return default
    return value


def page_body(items: Sequence[Any], total: int, query: ListQuery) -> dict[str, Any]:
    """The DESIGN list body (with the seeds' `total_pages` alias of `pages`)."""
    pages = math.ceil(total / query.page_size) if total else 0
    return {
        "items": list(items),
        "total": total,
        "page": query.page,
        "page_size": query.page_size,
        "pages": pages,
        "total_pages": pages,
    }


def paginate(items: Sequence[Any], query: ListQuery) -> dict[str, Any]:
    """Page an in-memory sequence that is already filtered and sorted."""
    return page_body(items[query.offset : query.offset + query.page_size], len(items), query)


def paginate_request(request: Request, items: Sequence[Any]) -> dict[str, Any]:
    """Page a whole list kept in its stored order by the request's page and page_size."""
    return paginate(items, list_query(request, sorts=("created_at",)))
