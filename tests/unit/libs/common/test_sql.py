"""Numbered-parameter SQL pieces."""

from libs.common.sql import Where, assignments


def test_where_numbers_placeholders_in_order_and_reuses_one_for_a_search() -> None:
    w = Where()
    w.add("status <> 'deleted'")
    w.add("(o.id::text = {0} OR o.slug = {0})", "acme")
    w.search(("name", "description"), "bot")
    w.add("org = ANY({})", ["o1"])
    assert w.sql == (
        " WHERE status <> 'deleted' AND (o.id::text = $1 OR o.slug = $1)"
        " AND (name ILIKE $2 OR description ILIKE $2) AND org = ANY($3)"
    )
    assert w.args == ["acme", "%bot%", ["o1"]]


def test_an_empty_where_and_an_empty_search_add_nothing() -> None:
    w = Where()
    w.search(("name",), None)
    assert (w.sql, w.args) == ("", [])


def test_assignments_keep_only_allowed_fields_after_the_row_id() -> None:
    sets, values = assignments({"name": "n", "id": "x", "plan": "pro"}, ("name", "plan"))
    assert sets == "name = $2, plan = $3, updated_at = now()"
    assert values == ["n", "pro"]
    assert assignments({}) == ("updated_at = now()", [])
