"""Reading py-spy's folded stacks: self and cumulative samples per frame."""

from benchmarks.folded import frame_name, shares

STACKS = [
    "main (/x/.venv/lib/python3.11/site-packages/uvicorn/main.py:1);f (app.py:3);g (app.py:9) 3",
    "main (/x/.venv/lib/python3.11/site-packages/uvicorn/main.py:1);f (app.py:4) 2",
    "main (/x/.venv/lib/python3.11/site-packages/uvicorn/main.py:1);f (app.py:3);f (app.py:5) 1",
    "",
]


def test_a_frame_is_named_by_function_and_file_without_line_or_site_packages() -> None:
    assert frame_name("f (/x/lib/python3.11/site-packages/a/b.py:12)") == "f (a/b.py)"
    assert frame_name("<module> (<frozen runpy>:88)") == "<module> (<frozen runpy>)"


def test_self_counts_the_innermost_frame_and_cumulative_each_frame_once_per_sample() -> None:
    total, own, on_stack = shares(STACKS)
    assert total == 6
    assert own == {"g (app.py)": 3, "f (app.py)": 3}
    assert on_stack["main (uvicorn/main.py)"] == 6
    assert on_stack["f (app.py)"] == 6  # the recursive sample counts once
    assert on_stack["g (app.py)"] == 3
