"""The whole-stack benchmark's accounting: which processes a row holds, what they spent."""

from benchmarks.load import bracketed
from benchmarks.processes import Proc, spent, tree


def test_a_tree_holds_its_roots_and_every_descendant_and_nothing_else() -> None:
    table = {
        1: Proc(0, 0.0),
        10: Proc(1, 0.0),
        11: Proc(10, 0.0),
        12: Proc(11, 0.0),
        20: Proc(1, 0.0),
    }
    assert tree(10)(table) == {10, 11, 12}
    assert tree(10, 20, 99)(table) == {10, 11, 12, 20}  # a root that is gone is left out


def test_spent_counts_a_new_process_whole_and_an_old_one_by_its_growth() -> None:
    before = {"postgres": {100: 5.0, 101: 1.0}, "gateway": {7: 2.0}}
    after = {"postgres": {100: 5.5, 102: 0.25}, "gateway": {7: 2.0}}  # 101 exited, 102 started
    assert spent(before, after) == {"postgres": 0.75, "gateway": 0.0}


def test_two_direct_runs_are_averaged_figure_by_figure_and_their_errors_added() -> None:
    before = {"calls": 100, "p50": 1.0, "errors": 1, "cpu_us": {"upstream": 400.0}}
    after = {"calls": 300, "p50": 2.0, "errors": 2, "cpu_us": {"upstream": 600.0}}
    assert bracketed(before, after) == {
        "calls": 200,
        "p50": 1.5,
        "errors": 3,
        "cpu_us": {"upstream": 500.0},
    }
