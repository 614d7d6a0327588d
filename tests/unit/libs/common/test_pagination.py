"""List parameters and the DESIGN list body."""

import pytest
from starlette.requests import Request

from libs.common.errors import Unprocessable
from libs.common.pagination import ListQuery, list_query, page_body, paginate, paginate_request


def request_with(query: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": query.encode(),
            "headers": [],
        }
    )


def test_defaults_are_first_page_of_twenty_sorted_by_the_first_allowed_column() -> None:
    q = list_query(request_with(""), sorts=["name", "created_at"])
    assert (q.page, q.page_size, q.sort, q.order, q.q) == (1, 20, "name", "desc", None)


def test_an_unknown_sort_column_is_refused_with_field_details() -> None:
    with pytest.raises(Unprocessable) as err:
        list_query(request_with("sort=password;drop"), sorts=["name"])
    assert "sort" in err.value.details["fields"]


def test_page_size_above_the_maximum_is_refused() -> None:
    with pytest.raises(Unprocessable) as err:
        list_query(request_with("page_size=1000"), sorts=["name"])
    assert err.value.details["fields"]["page_size"] == "must be at most 100"


@pytest.mark.parametrize(
    "query", ["page=302691907270939171094528", "page=1000001", "offset=99999999999999999999"]
)
def test_a_page_or_offset_past_any_list_is_refused_not_passed_to_sql(query: str) -> None:
    with pytest.raises(Unprocessable) as err:
        list_query(request_with(query), sorts=["name"])
    assert set(err.value.details["fields"]) == {query.split("=")[0]}


def test_non_numeric_page_is_refused() -> None:
    with pytest.raises(Unprocessable) as err:
        list_query(request_with("page=x&order=sideways"), sorts=["name"])
    assert set(err.value.details["fields"]) == {"page", "order"}


def test_limit_and_offset_are_accepted_as_aliases() -> None:
    q = list_query(request_with("limit=10&offset=30"), sorts=["name"])
    assert (q.page, q.page_size, q.offset) == (4, 10, 30)


def test_only_declared_filters_are_kept() -> None:
    q = list_query(request_with("status=ok&evil=1&q=%20git%20"), sorts=["name"], filters=["status"])
    assert q.filters == {"status": "ok"}
    assert q.q == "git"


def test_the_body_counts_pages() -> None:
    body = page_body([1, 2], 41, ListQuery(page=2, page_size=20))
    assert (body["total"], body["pages"], body["total_pages"], body["page"]) == (41, 3, 3, 2)


def test_paginate_slices_in_memory() -> None:
    body = paginate(list(range(45)), ListQuery(page=3, page_size=20))
    assert body["items"] == list(range(40, 45))
    assert body["pages"] == 3


def test_paginate_request_pages_a_whole_list_by_the_request() -> None:
    body = paginate_request(request_with("page=2&page_size=2"), [1, 2, 3])
    assert (body["items"], body["total"], body["page"], body["pages"]) == ([3], 3, 2, 2)
